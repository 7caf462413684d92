from datetime import timedelta
from functools import cache
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.models import User
from app.database import add_unique, utcnow
from app.errors import NotSignedIn
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
        raise NotSignedIn("Wrong username or password.")
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
        raise NotSignedIn("The token has expired: ask for a new one.") from None
    except BadSignature:
        raise NotSignedIn("The token is not valid.") from None
    user = db.session.get(User, data.get("uid")) if isinstance(data, dict) else None
    if user is None:
        raise NotSignedIn("The token's user no longer exists.")
    return user
