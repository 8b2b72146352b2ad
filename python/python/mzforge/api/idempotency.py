"""The ``Idempotency-Key`` of ``POST /v1/analyses`` (as Stripe's, and the IETF draft "The
Idempotency-Key HTTP Header Field"): a client that sends a key may repeat the request (after a
503, a timeout, a lost answer) and gets the analysis the first request created, never a second.

The key is stored on the analysis row, with the request's fingerprint (``request_sha256``), under
a unique index on (user_id, idempotency_key): the analysis and its key are committed together or
not at all, and of two requests racing with one key the database lets one INSERT through; the
other finds the winner's row and replays it. No in-process lock: several replicas share the
database. Keys expire after ``KEY_LIFETIME``; an expired key is taken off its analysis when it is
sent again, and that request creates a new analysis."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import Analysis, utcnow

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX_LENGTH = 255
KEY_LIFETIME = dt.timedelta(hours=24)
# For the OpenAPI schema; ``parse_key`` is what checks.
KEY_PATTERN = r"^[\x20-\x7e]+$"


class InvalidKey(ValueError):
    """The header is not one value of 1 to 255 printable ASCII characters."""


class KeyReused(ValueError):
    """The key is already that of an analysis created by a different request."""


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
    """The request's fingerprint: SHA-256 of the parsed body (``upload_ids`` in their order,
    ``params`` as sent, ``name``) as JSON with sorted keys, no whitespace and ASCII escapes. Key
    order and spacing do not change it; any value does (``1`` and ``1.0`` included)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def expired(analysis: Analysis, now: dt.datetime) -> bool:
    """Whether the analysis's key is older than ``KEY_LIFETIME`` (counted from its creation)."""
    created = analysis.created_at
    if created.tzinfo is None:  # SQLite hands back naive datetimes; every stored time is UTC
        created = created.replace(tzinfo=dt.timezone.utc)
    return now - created >= KEY_LIFETIME


def analysis_for_key(session: Session, user_id: int, key: str) -> Analysis | None:
    """The analysis ``user_id`` created with ``key``, unless the key has expired: then the key is
    taken off that analysis (in the session's transaction) so a new one can have it."""
    analysis = session.scalars(select(Analysis).where(
        Analysis.user_id == user_id, Analysis.idempotency_key == key)).first()
    if analysis is None or not expired(analysis, utcnow()):
        return analysis
    analysis.idempotency_key = None
    session.flush()
    return None


def check_same_request(analysis: Analysis, fingerprint: str) -> None:
    """Raises ``KeyReused`` unless ``analysis`` was created by a request with ``fingerprint``."""
    if analysis.request_sha256 != fingerprint:
        raise KeyReused(f"{HEADER} {analysis.idempotency_key!r} was already used for a different "
                        f"request (it created analysis {analysis.id}); send a new key for a new "
                        "request")
