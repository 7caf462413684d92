import functools
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request
from flask_smorest import Blueprint

from app.auth import service
from app.auth.models import User
from app.auth.schemas import CredentialsSchema, TokenSchema, UserSchema
from app.auth.service import Identity
from app.errors import NotSignedIn
from app.extensions import rate_limit

blp = Blueprint("auth", __name__, description="Accounts and bearer tokens")

# What a route taking a bearer token says in the OpenAPI spec.
BEARER = [{"bearerAuth": []}]


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def optional_user() -> User | None:
    """The user of the request's token if it sent one (a bad token is still a 401)."""
    token = _bearer_token()
    return service.user_from_token(token) if token else None


def optional_identity() -> Identity | None:
    """optional_user, unread: the caller's statements must refuse a deleted user (see
    service.identity_from_token)."""
    token = _bearer_token()
    return service.identity_from_token(token) if token else None


def login_required(view: Callable | None = None, *, trust_token: bool = False) -> Callable:
    """Require `Authorization: Bearer <token>` and put the user in `g.user`; the OpenAPI spec
    says the route takes a bearer token.

    `g.user` is the user's row, read for every request. With `trust_token=True` it is the
    token's Identity (id and username) instead, and the query is saved: only for a route whose
    service refuses a deleted user itself (service.identity_from_token says how).
    """
    if view is None:
        return functools.partial(login_required, trust_token=trust_token)
    who = service.identity_from_token if trust_token else service.user_from_token

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _bearer_token()
        if token is None:
            raise NotSignedIn(
                "Sign in: send 'Authorization: Bearer <token>' (POST /api/auth/token).",
                challenge=True,
            )
        g.user = who(token)
        return view(*args, **kwargs)

    return Blueprint.doc(security=BEARER)(wrapper)


def auth_rate_limit() -> str:
    return current_app.config["AUTH_RATE_LIMIT"]


@blp.post("/register")
@rate_limit(auth_rate_limit)
@blp.arguments(CredentialsSchema())
@blp.response(201, UserSchema)
def register(credentials: dict):
    """Create an account."""
    return service.register(**credentials)


@blp.post("/token")
@rate_limit(auth_rate_limit)
@blp.arguments(CredentialsSchema())
@blp.response(200, TokenSchema)
def create_token(credentials: dict):
    """Exchange a username and password for a bearer token."""
    return service.issue_token(**credentials)


@blp.get("/me")
@login_required
@blp.response(200, UserSchema)
def me():
    """Show the signed-in user."""
    return g.user
