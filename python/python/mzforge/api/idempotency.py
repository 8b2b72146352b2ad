"""The ``Idempotency-Key`` of ``POST /v1/analyses`` and ``POST /v1/uploads`` (as Stripe's, and
the IETF draft "The Idempotency-Key HTTP Header Field"): a client that sends a key may repeat the
request (after a 503, a timeout, a lost answer) and gets the analysis or upload the first request
created, never a second.

The key is stored on the row it created (``db.IdempotencyKeyed``), with the request's fingerprint
(``request_sha256``), under a unique index on (user_id, idempotency_key) per table: the row and
its key are committed together or not at all, and of two requests racing with one key the
database lets one INSERT through; the other finds the winner's row and replays it (``insert``).
No in-process lock: several replicas share the database. Keys expire after ``KEY_LIFETIME``; an
expired key is taken off its row when it is sent again, and that request creates a new one.
Analyses and uploads have keys of their own: one key may name an analysis and an upload."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc, select
from sqlalchemy.orm import Session

from .db import IdempotencyKeyed, utcnow

K = TypeVar("K", bound=IdempotencyKeyed)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX_LENGTH = 255
KEY_LIFETIME = dt.timedelta(hours=24)
# For the OpenAPI schema; ``parse_key`` is what checks.
KEY_PATTERN = r"^[\x20-\x7e]+$"


class InvalidKey(ValueError):
    """The header is not one value of 1 to 255 printable ASCII characters."""


class KeyReused(ValueError):
    """The key is already that of a row created by a different request."""


def parse_key(values: list[str]) -> str | None:
    """The key from the request's ``Idempotency-Key`` header values (None without the header),
    used exactly as sent."""
    if not values:
        return None
    if len(values) > 1:
        raise InvalidKey(f"send one {HEADER} header, not {len(values)}")
    key = values[0]
    problem = _key_problem(key)
    if problem:
        raise InvalidKey(f"the {HEADER} header must be 1 to {KEY_MAX_LENGTH} printable ASCII "
                         f"characters; {problem}")
    return key


def _key_problem(key: str) -> str | None:
    if not key:
        return "it is empty"
    if len(key) > KEY_MAX_LENGTH:
        return f"it has {len(key)}"
    bad = next((ch for ch in key if not " " <= ch <= "~"), None)
    return f"it contains {bad!r}" if bad is not None else None


def request_sha256(body: dict[str, Any]) -> str:
    """The request's fingerprint: SHA-256 of what identifies it (an analysis: the parsed body,
    ``upload_ids`` in their order, ``params`` as sent, ``name``; an upload: the file's name as
    stored and its SHA-256) as JSON with sorted keys, no whitespace and ASCII escapes. Key order
    and spacing do not change it; any value does (``1`` and ``1.0`` included)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def expired(row: IdempotencyKeyed, now: dt.datetime) -> bool:
    """Whether the row's key is older than ``KEY_LIFETIME`` (counted from its creation)."""
    created = row.created_at
    if created.tzinfo is None:  # SQLite hands back naive datetimes; every stored time is UTC
        created = created.replace(tzinfo=dt.timezone.utc)
    return now - created >= KEY_LIFETIME


def created_with_key(session: Session, model: type[K], user_id: int, key: str) -> K | None:
    """The ``model`` row (an analysis, an upload) ``user_id`` created with ``key``, unless the key
    has expired: then the key is taken off that row (in the session's transaction) so a new one
    can have it."""
    row = session.scalars(select(model).where(
        model.user_id == user_id, model.idempotency_key == key)).first()
    if row is None or not expired(row, utcnow()):
        return row
    row.idempotency_key = None
    session.flush()
    return None


def check_same_request(row: IdempotencyKeyed, fingerprint: str) -> None:
    """Raises ``KeyReused`` unless ``row`` was created by a request with ``fingerprint``."""
    if row.request_sha256 != fingerprint:
        what = type(row).__name__.lower()
        raise KeyReused(f"{HEADER} {row.idempotency_key!r} was already used for a different "
                        f"request (it created {what} {row.id}); send a new key for a new request")


def earlier(session: Session, model: type[K], user_id: int, key: str | None,
            fingerprint: str) -> K | None:
    """The row an earlier request with ``key`` and this ``fingerprint`` created, to be answered
    again (None without a key, or when there is none yet); ``KeyReused`` when that request was
    another."""
    if key is None:
        return None
    row = created_with_key(session, model, user_id, key)
    if row is not None:
        check_same_request(row, fingerprint)
    return row


def insert(session: Session, row: K, key: str | None, fingerprint: str) -> K | None:
    """Adds ``row`` with ``key`` and ``fingerprint`` and flushes it. None when it was inserted;
    when the unique index refused it (a request with the same key committed first: the database
    made this INSERT wait for it) the session is rolled back and that request's row is returned,
    as ``earlier`` would. Without a key every row is inserted."""
    if key is not None:
        row.idempotency_key, row.request_sha256 = key, fingerprint
    user_id = row.user_id
    session.add(row)
    try:
        session.flush()
    except sa_exc.IntegrityError:
        if key is None:
            raise
        session.rollback()
        winner = earlier(session, type(row), user_id, key, fingerprint)
        if winner is None:
            raise
        return winner
    return None
