"""Activities of a tenant's move to another database: thin wrappers over
``tenants.services.moves``, each idempotent. Declared with ``tenant_step``, so their
progress is recorded on the tenant like provisioning's."""

from orchestration.activities.tenants import tenant_step
from tenants.services import moves


@tenant_step
def tenant_move_hold(tenant_id: str) -> None:
    moves.tenant_move_hold(tenant_id=tenant_id)


@tenant_step
def tenant_move_release(tenant_id: str) -> None:
    moves.tenant_move_release(tenant_id=tenant_id)


@tenant_step(heartbeat_every=5)
def tenant_move_copy(tenant_id: str) -> str:
    """Copies the schema into the target database; returns the target."""
    return moves.tenant_move_copy(tenant_id=tenant_id)


@tenant_step(heartbeat_every=5)
def tenant_move_drop_copy(tenant_id: str) -> bool:
    return moves.tenant_move_drop_copy(tenant_id=tenant_id)


@tenant_step(heartbeat_every=5)
def tenant_move_verify(tenant_id: str) -> dict:
    """Row counts and checksums of every table, both sides; returns ``{table: rows}``."""
    return moves.tenant_move_verify(tenant_id=tenant_id)


@tenant_step
def tenant_move_switch(tenant_id: str) -> float:
    """Points the tenant at the copy; returns the seconds until the old schema is dropped."""
    return moves.tenant_move_switch(tenant_id=tenant_id)


@tenant_step(heartbeat_every=5)
def tenant_move_drop_old(tenant_id: str) -> bool:
    return moves.tenant_move_drop_old(tenant_id=tenant_id)


@tenant_step
def tenant_move_failed(tenant_id: str, reason: str) -> None:
    moves.tenant_move_failed(tenant_id=tenant_id, reason=reason)
