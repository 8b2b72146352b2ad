"""Configuration from environment variables, read once into one frozen value.

Embedded mode (the default) needs nothing: a SQLite file and a folder under ``MZFORGE_DATA_DIR``
(``./mzforge-data``) and a local worker pool. AWS mode is chosen by configuration only:
``DATABASE_URL=postgresql+psycopg://...`` (or ``MZFORGE_DATABASE_SECRET_ARN``, an RDS secret in
Secrets Manager), ``MZFORGE_UPLOADS_BUCKET`` + ``MZFORGE_RESULTS_BUCKET`` (S3 storage) and
``MZFORGE_STATE_MACHINE_ARN`` (analyses run as Step Functions executions).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote


def _number(env: dict[str, str], name: str, default: float, kind: type, what: str):  # noqa: ANN202
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be {what}, not {raw!r}") from None


def _int(env: dict[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int, "an integer")


def _float(env: dict[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float, "a number")


# Seconds the client waits for an answer beyond the server's statement timeout (the server's
# cancellation and its error have to come back) before it gives the connection up (pgwait.py).
ANSWER_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long a PostgreSQL connection may keep a request (or a worker) waiting; SQLite ignores
    them. Each bounds another way of going silent (``python/api/README.md``, "When the database
    goes away"); with the defaults no wait exceeds about 15 s, plus a new connection's 10 s, so a
    request is answered (503) before the web portal (30 s) or the load balancer (60 s) gives up:

    * ``connect_seconds``: libpq's ``connect_timeout`` for a new connection (at least 2, libpq's
      minimum; psycopg's own default is 130 s).
    * ``statement_seconds``: the server's ``statement_timeout`` (sent as ``options``): a statement
      still running after that long is cancelled (a lock wait, a runaway query). The client also gives up
      waiting for any answer (a statement, COMMIT, the pool's ping) after ``statement_seconds`` +
      ``ANSWER_GRACE_SECONDS``: a peer that acknowledges and never answers (a hung server, a proxy
      that stopped forwarding). 0 turns both off.
    * ``tcp_user_timeout_seconds``: data sent and not acknowledged for that long ends the
      connection (a network partition mid-statement). 0 keeps the kernel's (about 15 min).
    * ``keepalives_*``: a connection waiting for an answer (or idle in the pool) is probed after
      ``keepalives_idle_seconds`` of silence, every ``keepalives_interval_seconds``, and ended
      after ``keepalives_count`` unanswered probes (a partition while the server works; the
      kernel's default starts probing after 2 h)."""

    connect_seconds: int = 10
    statement_seconds: float = 10.0
    tcp_user_timeout_seconds: float = 10.0
    keepalives_idle_seconds: int = 5
    keepalives_interval_seconds: int = 2
    keepalives_count: int = 3

    @property
    def answer_seconds(self) -> float | None:
        """How long the client waits for any answer of the server (None: as long as it takes)."""
        return self.statement_seconds + ANSWER_GRACE_SECONDS if self.statement_seconds > 0 else None

    @classmethod
    def from_env(cls, env: dict[str, str]) -> DatabaseTimeouts:
        d = cls()
        return cls(
            connect_seconds=max(2, _int(env, "MZFORGE_DB_CONNECT_TIMEOUT", d.connect_seconds)),
            statement_seconds=max(0.0, _float(env, "MZFORGE_DB_STATEMENT_TIMEOUT", d.statement_seconds)),
            tcp_user_timeout_seconds=max(0.0, _float(env, "MZFORGE_DB_TCP_USER_TIMEOUT",
                                                     d.tcp_user_timeout_seconds)),
            keepalives_idle_seconds=max(1, _int(env, "MZFORGE_DB_KEEPALIVES_IDLE",
                                                d.keepalives_idle_seconds)),
            keepalives_interval_seconds=max(1, _int(env, "MZFORGE_DB_KEEPALIVES_INTERVAL",
                                                    d.keepalives_interval_seconds)),
            keepalives_count=max(1, _int(env, "MZFORGE_DB_KEEPALIVES_COUNT", d.keepalives_count)),
        )


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    uploads_bucket: str | None = None
    results_bucket: str | None = None
    state_machine_arn: str | None = None
    environment: str = "local"
    max_upload_bytes: int = 2 * 1024**3
    workers: int = 2
    worker_threads: int = 1
    reconcile_seconds: float = 2.0
    max_inflight: int = 32
    db_timeouts: DatabaseTimeouts = field(default_factory=DatabaseTimeouts)
    max_result_reads: int = 4
    orphan_scan_seconds: float = 3600.0
    orphan_min_age_seconds: float = 3600.0
    env: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def storage_kind(self) -> str:
        return "s3" if self.uploads_bucket else "local"

    @property
    def backend(self) -> str:
        return "stepfunctions" if self.state_machine_arn else "local"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("MZFORGE_DATA_DIR") or "mzforge-data").absolute()
        url = env.get("DATABASE_URL") or ""
        if not url and env.get("MZFORGE_DATABASE_SECRET_ARN"):
            url = database_url_from_secret(env["MZFORGE_DATABASE_SECRET_ARN"])
        if not url:
            url = f"sqlite:///{data_dir / 'mzforge.db'}"
        if url.startswith("postgres://") or url.startswith("postgresql://"):
            # SQLAlchemy's default driver would be psycopg2; the wheel's extra ships psycopg 3.
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        uploads = env.get("MZFORGE_UPLOADS_BUCKET") or None
        results = env.get("MZFORGE_RESULTS_BUCKET") or None
        if bool(uploads) != bool(results):
            raise ValueError("set both MZFORGE_UPLOADS_BUCKET and MZFORGE_RESULTS_BUCKET, or neither")
        arn = env.get("MZFORGE_STATE_MACHINE_ARN") or None
        if arn and not uploads:
            raise ValueError("MZFORGE_STATE_MACHINE_ARN needs the S3 buckets (MZFORGE_UPLOADS_BUCKET, MZFORGE_RESULTS_BUCKET)")
        return cls(
            data_dir=data_dir,
            database_url=url,
            uploads_bucket=uploads,
            results_bucket=results,
            state_machine_arn=arn,
            environment=env.get("MZFORGE_ENVIRONMENT") or "local",
            max_upload_bytes=_int(env, "MZFORGE_MAX_UPLOAD_BYTES", 2 * 1024**3),
            workers=max(1, _int(env, "MZFORGE_WORKERS", 2)),
            worker_threads=max(0, _int(env, "MZFORGE_WORKER_THREADS", 1)),
            reconcile_seconds=float(env.get("MZFORGE_RECONCILE_SECONDS") or 2.0),
            max_inflight=max(1, _int(env, "MZFORGE_MAX_INFLIGHT", 32)),
            db_timeouts=DatabaseTimeouts.from_env(env),
            max_result_reads=max(1, _int(env, "MZFORGE_MAX_RESULT_READS", 4)),
            orphan_scan_seconds=max(0.0, _float(env, "MZFORGE_ORPHAN_SCAN_SECONDS", 3600.0)),
            orphan_min_age_seconds=max(0.0, _float(env, "MZFORGE_ORPHAN_MIN_AGE_SECONDS", 3600.0)),
            env=env,
        )


def database_url_from_secret(secret_arn: str) -> str:
    """``postgresql+psycopg://`` URL from an RDS-generated secret (JSON with host, port,
    username, password, dbname)."""
    import boto3

    value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    s = json.loads(value)
    user, password = quote(s["username"], safe=""), quote(s["password"], safe="")
    return (
        f"postgresql+psycopg://{user}:{password}@{s['host']}:{s.get('port', 5432)}/"
        f"{s.get('dbname', 'postgres')}"
    )
