"""Self-validating workflow inputs.

An input dataclass derives from ``WorkflowInput`` and checks its fields in ``validate()``,
which runs on construction. The worker constructs it when it decodes a run's input, and an
``ApplicationError`` raised there fails the *run* at once (non-retryable, naming the field)
instead of failing its workflow task over and over. Required fields default to a value
their check refuses, so an input that lacks one (written by older code, say) fails the
same way rather than with a ``TypeError`` the worker would retry forever.
"""

import uuid

from temporalio.exceptions import ApplicationError

from orchestration.errors import INVALID_INPUT


class WorkflowInput:
    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        raise NotImplementedError


def invalid(field: str, problem: str) -> ApplicationError:
    return ApplicationError(
        f"invalid input: {field} {problem}", field, type=INVALID_INPUT, non_retryable=True
    )


def require_uuid(field: str, value) -> None:
    try:
        uuid.UUID(str(value))
    except ValueError:
        raise invalid(field, f"must be a UUID, got {value!r}") from None


def require_positive(field: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise invalid(field, f"must be a positive integer, got {value!r}")
