"""Self-validating workflow inputs.

An input dataclass derives from ``WorkflowInput`` and checks its fields in ``validate()``,
which runs on construction: at the start site (``enqueue_start`` refuses to write a row for
an invalid input) and again on the worker. Required fields default to a value their check
refuses, so an input that lacks one (written by older code, say) fails like a wrong one.

A workflow's ``run`` takes ``XInput | dict`` and begins with ``XInput.parse(params)``. The
SDK decodes a well-typed input into the dataclass; one it cannot (``{"attempt": "2"}``: a
string where an integer belongs) it would otherwise refuse with a ``TypeError`` that fails
the run's first *task* over and over. Through the union it arrives as a dict instead, and
``parse`` fails the *run* at once with a non-retryable ``InvalidInput`` naming the field.
"""

import dataclasses
import typing
import uuid

from temporalio.exceptions import ApplicationError

from orchestration.errors import INVALID_INPUT


class WorkflowInput:
    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        raise NotImplementedError

    @classmethod
    def parse(cls, value: "WorkflowInput | dict"):
        """``value`` as this dataclass, or ``InvalidInput`` naming the first wrong field."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise invalid("input", f"must be an object, got {type(value).__name__}")
        hints = typing.get_type_hints(cls)
        known = {}
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            if field.name not in value:
                continue
            expected, given = hints[field.name], value[field.name]
            if expected in (int, str, float) and not _is(given, expected):
                raise invalid(field.name, f"must be {expected.__name__}, got {given!r}")
            known[field.name] = given
        return cls(**known)


def _is(value, expected: type) -> bool:
    if isinstance(value, bool):  # JSON true is not an integer here
        return False
    if expected is float:
        return isinstance(value, int | float)
    return isinstance(value, expected)


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


def require_reminder_first(
    remind_field: str, remind_after: int, expire_field: str, expire_after: int
) -> None:
    """A run that reminds once then expires: both positive, the reminder first."""
    require_positive(remind_field, remind_after)
    require_positive(expire_field, expire_after)
    if remind_after >= expire_after:
        raise invalid(remind_field, f"must be less than {expire_field}")
