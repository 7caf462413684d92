import marshmallow as ma

from app.database import MAX_ID, utcnow
from app.schemas import PageArgsSchema, TrimmedString, UTCDateTime, not_in_the_past, page_of

MAX_OPTIONS = 50


def distinct(names: list[str]) -> None:
    folded = [name.casefold() for name in names]
    if len(set(folded)) != len(folded):
        raise ma.ValidationError("Options must be different from each other.")


class PollCreateSchema(ma.Schema):
    title = TrimmedString(required=True, validate=ma.validate.Length(min=1, max=500))
    options = ma.fields.List(
        TrimmedString(validate=ma.validate.Length(min=1, max=200)),
        required=True,
        validate=[
            ma.validate.Length(
                min=2, max=MAX_OPTIONS, error="Give between {min} and {max} options."
            ),
            distinct,
        ],
    )
    close_date = UTCDateTime(required=True, validate=not_in_the_past)


class PollUpdateSchema(ma.Schema):
    close_date = UTCDateTime(required=True, validate=not_in_the_past)


class VoteCreateSchema(ma.Schema):
    option_id = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=1, max=MAX_ID)
    )


class VoteSchema(ma.Schema):
    id = ma.fields.Integer()
    poll_id = ma.fields.Integer()
    option_id = ma.fields.Integer()
    created_at = UTCDateTime()


class OptionSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    votes = ma.fields.Integer()


class ResultSchema(ma.Schema):
    option_id = ma.fields.Integer()
    name = ma.fields.String()
    votes = ma.fields.Integer()
    share = ma.fields.Float(metadata={"description": "Fraction of all votes, 0 to 1."})


class ResultsSchema(ma.Schema):
    total_votes = ma.fields.Integer()
    winners = ma.fields.List(
        ma.fields.Integer(), metadata={"description": "Option ids; a tie has several."}
    )
    tie = ma.fields.Boolean()
    options = ma.fields.List(ma.fields.Nested(ResultSchema))


class PollSchema(ma.Schema):
    id = ma.fields.Integer()
    title = ma.fields.String()
    owner = ma.fields.String(attribute="owner_name", metadata={"description": "Its username."})
    options = ma.fields.List(ma.fields.Nested(OptionSchema))
    total_votes = ma.fields.Function(lambda poll: sum(option.votes for option in poll.options))
    status = ma.fields.Function(lambda poll: "open" if poll.is_open(utcnow()) else "closed")
    close_date = UTCDateTime()
    closed_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()
    seconds_remaining = ma.fields.Function(
        lambda poll: max(0.0, round((poll.close_date - utcnow()).total_seconds(), 3))
    )
    results = ma.fields.Nested(ResultsSchema, allow_none=True)
    results_computed_at = UTCDateTime(allow_none=True)
    my_vote = ma.fields.Integer(
        allow_none=True, metadata={"description": "The signed-in user's option id, if they voted."}
    )


class PollQueryArgsSchema(PageArgsSchema):
    status = ma.fields.String(
        load_default="all", validate=ma.validate.OneOf(["open", "closed", "all"])
    )


PollPageSchema = page_of(PollSchema)
