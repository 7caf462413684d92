import marshmallow as ma

from app.schemas import UTCDateTime

USERNAME = ma.validate.Regexp(
    r"^[A-Za-z0-9_.-]{3,64}$", error="Use 3 to 64 letters, digits, '_', '.' or '-'."
)


class CredentialsSchema(ma.Schema):
    username = ma.fields.String(required=True, validate=USERNAME)
    password = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(min=8, max=128)
    )


class UserSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    username = ma.fields.String(dump_only=True)
    created_at = UTCDateTime(dump_only=True)


class TokenSchema(ma.Schema):
    token = ma.fields.String()
    token_type = ma.fields.String(dump_default="Bearer")
    expires_at = UTCDateTime()
