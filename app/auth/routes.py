from flask import current_app, g
from flask_smorest import Blueprint

from app.auth import service
from app.auth.schemas import CredentialsSchema, TokenSchema, UserSchema
from app.extensions import limiter

blp = Blueprint("auth", __name__, description="Accounts and bearer tokens")


def auth_rate_limit() -> str:
    return current_app.config["AUTH_RATE_LIMIT"]


@blp.post("/register")
@limiter.limit(auth_rate_limit)
@blp.arguments(CredentialsSchema)
@blp.response(201, UserSchema)
def register(credentials: dict):
    """Create an account."""
    return service.register(**credentials)


@blp.post("/token")
@limiter.limit(auth_rate_limit)
@blp.arguments(CredentialsSchema)
@blp.response(200, TokenSchema)
def create_token(credentials: dict):
    """Exchange a username and password for a bearer token."""
    return service.issue_token(**credentials)


@blp.get("/me")
@blp.doc(security=[{"bearerAuth": []}])
@service.login_required
@blp.response(200, UserSchema)
def me():
    """Show the signed-in user."""
    return g.user
