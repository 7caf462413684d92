import marshmallow as ma

from app.schemas import UTCDateTime


class PingSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    created_at = UTCDateTime(dump_only=True)
    ponged_at = UTCDateTime(dump_only=True, allow_none=True)
    worker = ma.fields.String(dump_only=True, allow_none=True)
    status = ma.fields.Function(lambda ping: "ponged" if ping.ponged_at else "pending")
