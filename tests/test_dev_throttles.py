"""Under `make dev` (several web processes) a throttle allows what its setting says, not
that times the number of processes: the processes share one cache."""

from devstack import WEB_WORKERS
from tests.test_database_stall import _Web


def test_a_throttle_counts_across_the_dev_servers_processes(empty_database_cache, dev_web_server):
    assert WEB_WORKERS > 1
    port, log = dev_web_server(THROTTLE_SIGNUP="3/hour")
    web = _Web(port)
    # Refused bodies count as much as accepted ones: the throttle comes first.
    statuses = [web("POST", "/api/v1/signup/", {"email": "x"})[1] for _ in range(12)]
    assert statuses.count(429) == 9, (statuses, log.read_text()[-2000:])
