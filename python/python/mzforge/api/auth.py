"""Bearer tokens: random, shown once, stored as SHA-256 hex."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import Token, User

TOKEN_PREFIX = "mzf_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(session: Session, user: User) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(Token(user_id=user.id, token_sha256=hash_token(token)))
    return token


def user_for_token(session: Session, token: str) -> User | None:
    if not token:
        return None
    return session.scalars(
        select(User).join(Token).where(Token.token_sha256 == hash_token(token))
    ).first()


def create_user(session: Session, email: str, *, is_admin: bool = False) -> tuple[User, str]:
    """A new user with a first token; raises ValueError when the email exists."""
    email = email.strip()
    if session.scalars(select(User).where(User.email == email)).first() is not None:
        raise ValueError(f"user {email} exists")
    user = User(email=email, is_admin=is_admin)
    session.add(user)
    session.flush()
    return user, new_token(session, user)
