from flask import g
from flask_smorest import Blueprint

from app.auth import service
from app.auth.schemas import CredentialsSchema, TokenSchema, UserSchema

blp = Blueprint("auth", __name__, description="Accounts and bearer tokens")


@blp.post("/register")
@blp.arguments(CredentialsSchema)
@blp.response(201, UserSchema)
def register(credentials: dict):
    """Create an account."""
    return service.register(**credentials)


@blp.post("/token")
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
