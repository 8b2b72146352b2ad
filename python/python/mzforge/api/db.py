"""The data model (SQLAlchemy 2) and the database engine. The schema is owned by the Alembic
migrations in ``migrations/``; ``migrate()`` brings a database up to date (run on start and by
``mzforge-api migrate``)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
    make_url,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

from .settings import DatabaseTimeouts

if TYPE_CHECKING:
    from alembic.config import Config

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    tokens: Mapped[list[Token]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user: Mapped[User] = relationship(back_populates="tokens")


class IdempotencyKeyed:
    """The Idempotency-Key of the request that created the row (unique per user, NULL without
    one) and that request's fingerprint (idempotency.py)."""

    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    request_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Upload(IdempotencyKeyed, Base):
    __tablename__ = "uploads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    storage_key: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    # SQLite: ids are never reused (analyses name their uploads by id; migration 0004).
    __table_args__ = (Index("ix_uploads_user_id_idempotency_key", "user_id", "idempotency_key",
                            unique=True), {"sqlite_autoincrement": True})


class Analysis(IdempotencyKeyed, Base):
    __tablename__ = "analyses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # analysisId of the design (Step Functions execution name, results prefix).
    run_id: Mapped[str] = mapped_column(String(80), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    upload_ids: Mapped[list[int]] = mapped_column(JSON)
    # The inputs as they were when the analysis was requested: [{upload_id, filename, key, stem}].
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    backend: Mapped[str] = mapped_column(String(16))
    runner: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    checked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    result_location: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_analyses_user_id_idempotency_key", "user_id", "idempotency_key",
                            unique=True),)


def make_engine(url: str, pool_size: int = 32, timeouts: DatabaseTimeouts | None = None) -> Engine:
    """An engine whose pool has room for ``pool_size`` requests in flight (the app's
    concurrency limit) plus headroom for the dispatcher, uploads and probes. On PostgreSQL a
    pooled connection is tested before use (a database that restarted or failed over is noticed
    there, not by the request), and no wait for the server is unbounded: ``timeouts`` (by
    default ``DatabaseTimeouts()``) become libpq connection parameters (``postgres_connect_args``)
    and a deadline on every wait for an answer (``pgwait.py``)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=pool_size, max_overflow=10)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    timeouts = timeouts or DatabaseTimeouts()
    engine = create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=10,
                           connect_args=postgres_connect_args(url, timeouts))
    if timeouts.answer_seconds is not None:
        from .pgwait import bound_waits

        bound_waits(engine, timeouts.answer_seconds)
    return engine


def postgres_connect_args(url: str, timeouts: DatabaseTimeouts) -> dict[str, Any]:
    """libpq connection parameters for ``timeouts``. Parameters the URL sets itself (its query
    string) are left to it; its ``options`` are kept, after the statement timeout."""
    args: dict[str, Any] = {
        "connect_timeout": max(2, timeouts.connect_seconds),
        "keepalives": 1,
        "keepalives_idle": timeouts.keepalives_idle_seconds,
        "keepalives_interval": timeouts.keepalives_interval_seconds,
        "keepalives_count": timeouts.keepalives_count,
    }
    if timeouts.tcp_user_timeout_seconds > 0:
        args["tcp_user_timeout"] = round(timeouts.tcp_user_timeout_seconds * 1000)
    query = make_url(url).query
    args = {k: v for k, v in args.items() if k not in query}
    if timeouts.statement_seconds > 0:
        own = query.get("options")
        own = " ".join(own) if isinstance(own, tuple) else own
        ms = max(1, round(timeouts.statement_seconds * 1000))
        args["options"] = f"-c statement_timeout={ms}" + (f" {own}" if own else "")
    return args


def database_unavailable(e: BaseException) -> bool:
    """Whether ``e`` means the database could not be reached or the connection was lost (the
    request may be retried), as opposed to a statement the database refused."""
    if isinstance(e, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        return True
    return isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """The Alembic configuration of the migrations in ``migrations/`` for the database ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Upgrades the database to ``revision``, by default the newest (Alembic ``upgrade head``).
    Safe to run from several processes at once: they take turns (``migrations/env.py``)."""
    from alembic import command

    # SQLite skips its busy handler where waiting could deadlock (a connection upgrading its
    # read lock, or switching to WAL, while another writes), so replicas starting together on
    # one file can see "database is locked" at once. A migration is one transaction: a failed
    # attempt left nothing behind, and is tried again.
    attempts = 5 if url.startswith("sqlite") else 1
    for attempt in range(1, attempts + 1):
        try:
            command.upgrade(alembic_config(url), revision)
            return
        except sa_exc.OperationalError as e:
            if attempt == attempts or "database is locked" not in str(e):
                raise
            time.sleep(0.2 * attempt)
