"""The API contract's shared parts: the error answers every operation documents, and what
DRF's text fields refuse, written into the schema so that a request the schema calls valid
is not turned away for a reason it did not state.

Checked by ``tests/api/test_openapi_contract.py`` (the schema is valid OpenAPI 3, and
requests generated from it, valid and invalid, get the answers it documents).
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

# JSON Schema patterns (ECMA-262, also valid Python) of what DRF's CharField accepts: no NUL
# character, and (unless blank is allowed) not blank once surrounding whitespace is trimmed.
NO_NUL = r"^[^\u0000]*$"


def trimmed_text(max_length: int | None) -> str:
    """A string that is 1..``max_length`` characters once surrounding whitespace is trimmed
    (DRF trims before it checks the length, so the raw string may be longer)."""
    if max_length == 1:
        return r"^\s*[^\s\u0000]\s*$"
    inner = r"[^\u0000]*" if max_length is None else rf"[^\u0000]{{0,{max_length - 2}}}"
    return rf"^\s*[^\s\u0000](?:{inner}[^\s\u0000])?\s*$"


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class RefusalSerializer(ErrorSerializer):
    """A 403: ``detail`` alone, or with the tenant's state when that is why."""

    status = serializers.CharField(
        required=False,
        help_text="The tenant's state when it is why (`suspended`, `deletion_scheduled`).",
    )
    reason = serializers.CharField(
        required=False,
        help_text="Why the tenant is suspended: `billing`, `abuse`, `owner`, `unverified` "
        "or `moving`.",
    )


def field_errors(name: str, serializer_class) -> serializers.Serializer:
    """The 400 body of a request validated by ``serializer_class``: messages per field, and
    ``non_field_errors`` for the request as a whole; or ``detail`` alone when the body is
    not a JSON object at all."""
    messages = {
        field: serializers.ListField(child=serializers.CharField(), required=False)
        for field in [*serializer_class().fields, "non_field_errors"]
    }
    return inline_serializer(
        name, {**messages, "detail": serializers.CharField(required=False)}, required=False
    )


_DESCRIPTIONS = {
    400: "The request is invalid: a list of messages per field (`non_field_errors` for the "
    "request as a whole), or `detail` when the body is not a JSON object.",
    401: "No Bearer token, or one that is unknown, expired or revoked.",
    403: "The token's user may see this tenant, but not do this; or the tenant is "
    "suspended (`status` and `reason` say so) or scheduled for deletion (`status` says "
    "so): then only its owner may read its status and export its data (and restore one "
    "scheduled for deletion).",
    404: "No such tenant, or one the caller may not see (the same answer).",
    409: "The tenant's status does not allow this (for example, it is already deleted, or "
    "its grace period before the purge is over).",
    413: "The request body is larger than the limit (`DATA_UPLOAD_MAX_MEMORY_SIZE`).",
    429: "Too many requests; the `Retry-After` header says how many seconds to wait.",
    503: "The database is unavailable; try again after `Retry-After` seconds.",
}


def error_responses(*statuses: int, fields=None) -> dict[int, OpenApiResponse]:
    """``extend_schema(responses=...)`` entries for these error statuses; ``fields`` is the
    400 body (see ``field_errors``)."""
    return {
        status: OpenApiResponse(
            fields
            if status == 400 and fields is not None
            else RefusalSerializer
            if status == 403
            else ErrorSerializer,
            description=_DESCRIPTIONS[status],
        )
        for status in statuses
    }


def retry_after_headers(result, generator, request, public):
    """Postprocessing hook: 429 and 503 answers carry ``Retry-After`` (seconds)."""
    result.setdefault("components", {}).setdefault("headers", {})["RetryAfter"] = {
        "schema": {"type": "integer", "minimum": 0},
        "required": True,
        "description": "Seconds to wait before trying again.",
    }
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if status in ("429", "503"):
                    response["headers"] = {
                        "Retry-After": {"$ref": "#/components/headers/RetryAfter"}
                    }
    return result


class DeleteWithBodySchema(AutoSchema):
    """The schema of a view whose DELETE takes a JSON body (the request serializer given to
    ``extend_schema``), which drf-spectacular otherwise leaves out for that method: closing
    an account asks for the password."""

    def _get_request_body(self, direction="request"):
        if self.method != "DELETE":
            return super()._get_request_body(direction)
        self.method = "POST"  # the base class documents bodies of unsafe methods only
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"
