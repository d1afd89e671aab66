"""Self-validating workflow inputs.

An input dataclass calls ``require(...)`` in ``__post_init__``; a bad input fails the
workflow at once with a non-retryable ``ApplicationError`` that names the field.
"""

import uuid

from temporalio.exceptions import ApplicationError

from orchestration.errors import INVALID_INPUT


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
