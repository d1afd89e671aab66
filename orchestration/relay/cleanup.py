"""What the relay tidies: started rows past the retention, and at the end its own leases,
connections and event loops."""

import contextlib
import logging
import threading
from datetime import timedelta

from django.db import Error, connection

from orchestration.models import OutboxEntry
from orchestration.outbox import prune_started

logger = logging.getLogger(__package__)  # "orchestration.relay": log lines keep one logger name


class CleaningUp:
    """The ``OutboxRelay``'s pruning (by its first lane, every ``prune_interval``) and
    ``close()``."""

    relay_id: str
    retention: timedelta
    _loops: list
    _thread_loop: threading.local

    def _prune(self) -> None:
        """Delete started rows past the retention; a failure is logged, never fatal, and
        never holds up starts (the next prune is an interval later)."""
        try:
            if pruned := prune_started(older_than=self.retention):
                logger.info("pruned %d started outbox rows", pruned)
        except Exception:
            logger.exception("pruning started outbox rows failed; trying again later")

    def close(self) -> None:
        """Release the leases this relay still holds (best effort: a relay that cannot reach
        the database leaves them to expire), the LISTEN connections, this thread's database
        connection and the loops."""
        for lane in list(self._lane_states):
            self._close_listener(lane)
        if self._in_flight is not None:
            self._in_flight.close()
            self._in_flight = None
        with contextlib.suppress(Error):  # a lost connection is an InterfaceError
            OutboxEntry.objects.filter(lease_owner=self.relay_id).update(
                lease_owner="", lease_expires_at=None
            )
        connection.close()
        for lane in self._lane_states:
            if lane.starters is not None:
                lane.starters.shutdown(wait=True)
                lane.starters = None
        for loop in self._loops:
            loop.close()
        self._loops.clear()
        self._thread_loop = threading.local()
        self._client = None
