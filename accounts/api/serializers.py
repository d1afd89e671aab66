from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from core.openapi import NO_NUL, trimmed_text


class TextField(serializers.CharField):
    """A ``CharField`` that takes JSON strings only, as the schema says (DRF's also takes a
    number and turns it into text). Request fields that are text use this one."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TextFieldSchema(OpenApiSerializerFieldExtension):
    """What a ``TextField`` refuses in a request, in its schema: NUL characters, blank
    strings, and a length counted after trimming surrounding whitespace.

    A trimmed field becomes a named component (``Text200``: 1-200 characters once trimmed): a
    ``$ref`` keeps drf-spectacular from adding a ``maxLength`` for the raw string, which would
    be wrong (DRF measures the trimmed one)."""

    target_class = TextField
    match_subclasses = True

    def get_name(self) -> str | None:
        return getattr(self, "_name", None)

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        if direction != "request" or field.read_only or "pattern" in schema:
            return schema
        if field.allow_blank:
            schema["pattern"] = NO_NUL
        elif field.trim_whitespace:
            most = field.max_length
            self._name = f"Text{most or ''}"
            schema = {
                "type": "string",
                "pattern": trimmed_text(most),
                "description": f"Text of 1{f'-{most}' if most else ' or more'} characters once "
                "surrounding whitespace is trimmed (as it is), without NUL characters.",
            }
        else:
            schema["minLength"] = max(schema.get("minLength", 0), 1)
            schema["pattern"] = NO_NUL
        return schema


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = TextField(max_length=256, trim_whitespace=False, write_only=True)


class VerifyEmailSerializer(serializers.Serializer):
    token = TextField(max_length=200)


class ResendVerificationSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmSerializer(serializers.Serializer):
    token = TextField(max_length=200)
    password = TextField(
        max_length=256,
        trim_whitespace=False,
        write_only=True,
        help_text="The new password; Django's validators decide (length >= 8, not common, "
        "not numeric, not like the email).",
    )


class PasswordSerializer(serializers.Serializer):
    password = TextField(
        max_length=256,
        trim_whitespace=False,
        write_only=True,
        help_text="The account's current password.",
    )


class EmailChangeSerializer(PasswordSerializer):
    email = serializers.EmailField(max_length=254, help_text="The new address.")


class EmailChangeConfirmSerializer(serializers.Serializer):
    token = TextField(max_length=200)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class UserSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
