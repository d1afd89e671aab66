"""Under `make dev` (several web processes) a throttle allows what its setting says, not
that times the number of processes: the processes share one cache."""

import os
import subprocess

from django.db import connection

from devstack import WEB_WORKERS, web_server_command
from devstack.localservices import PROJECT_DIR, free_port, stop_process_group, wait_for_port
from tests.test_database_pool import _database_url
from tests.test_database_stall import _Web


def test_a_throttle_counts_across_the_dev_servers_processes(
    empty_database_cache, temporal_address, tmp_path
):
    assert WEB_WORKERS > 1
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": _database_url(connection.settings_dict),
        "TEMPORAL_ADDRESS": temporal_address,
        "THROTTLE_SIGNUP": "3/hour",
    }
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            web_server_command(port, reload=False),
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port("127.0.0.1", port, timeout=20, proc=server)
        web = _Web(port)
        # Refused bodies count as much as accepted ones: the throttle comes first.
        statuses = [web("POST", "/api/v1/signup/", {"email": "x"})[1] for _ in range(12)]
        assert statuses.count(429) == 9, (statuses, log.read_text()[-2000:])
    finally:
        stop_process_group(server)
