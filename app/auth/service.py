from collections.abc import Callable
from datetime import timedelta
from functools import cache, wraps
from typing import Any

from flask import current_app, g, request
from flask_smorest import abort
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.models import User
from app.database import add_unique, utcnow
from app.extensions import db


def _hash(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


@cache
def _dummy_hash(method: str) -> str:
    """A real hash to compare against for unknown users, so a wrong username costs as long as
    a wrong password and does not reveal which usernames exist."""
    return generate_password_hash("not-a-real-password", method=method)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="punctual-auth-token")


def register(*, username: str, password: str) -> User:
    user = User(username=username.lower(), password_hash=_hash(password))
    add_unique(user, conflict=f"The username {username!r} is taken.")
    db.session.commit()
    return user


def issue_token(*, username: str, password: str) -> dict[str, Any]:
    user = db.session.execute(
        db.select(User).where(User.username == username.lower())
    ).scalar_one_or_none()
    stored = user.password_hash if user else _dummy_hash(current_app.config["PASSWORD_HASH_METHOD"])
    if not check_password_hash(stored, password) or not user:
        abort(401, message="Wrong username or password.")
    ttl = current_app.config["TOKEN_TTL"]
    return {
        "token": _serializer().dumps({"uid": user.id}),
        "token_type": "Bearer",
        "expires_at": utcnow() + timedelta(seconds=ttl),
    }


def user_from_token(token: str) -> User:
    try:
        data = _serializer().loads(token, max_age=current_app.config["TOKEN_TTL"])
    except SignatureExpired:
        abort(401, message="The token has expired: ask for a new one.")
    except BadSignature:
        abort(401, message="The token is not valid.")
    user = db.session.get(User, data.get("uid")) if isinstance(data, dict) else None
    if user is None:
        abort(401, message="The token's user no longer exists.")
    return user


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def optional_user() -> User | None:
    """The user of the request's token if it sent one (a bad token is still a 401)."""
    token = _bearer_token()
    return user_from_token(token) if token else None


# What a route taking a bearer token says in the OpenAPI spec: @blp.doc(security=BEARER).
BEARER = [{"bearerAuth": []}]


def login_required(view: Callable) -> Callable:
    """Require `Authorization: Bearer <token>` and put the user in `g.user`."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _bearer_token()
        if token is None:
            abort(
                401,
                message="Sign in: send 'Authorization: Bearer <token>' (POST /api/auth/token).",
                headers={"WWW-Authenticate": "Bearer"},
            )
        g.user = user_from_token(token)
        return view(*args, **kwargs)

    return wrapper
