"""``ApplicationError`` types that no retry can fix (shared by activities and workflows)."""

# An input that is wrong and will stay wrong: a malformed id, a row that does not exist.
INVALID_INPUT = "InvalidInput"
# A state the lifecycle does not allow the step from (e.g. provisioning a deleted tenant).
INVALID_STATE = "InvalidState"
NON_RETRYABLE_ERROR_TYPES = [INVALID_INPUT, INVALID_STATE]
# A ``django.tasks`` task path the worker cannot import, or that names no ``@task``.
TASK_NOT_FOUND = "TaskNotFound"
# A ``django.tasks`` task whose tenant is suspended: its run waits for the reactivation.
TENANT_SUSPENDED = "TenantSuspended"
