"""Alembic environment: the URL comes from the caller's Config (``mzforge.api.db.migrate``).

Every replica runs the upgrade on start, so upgrades take turns: the whole upgrade is one
transaction that first takes a lock (PostgreSQL: an advisory lock; SQLite: the database's write
lock), and a replica that waited finds the schema already up to date. Without it, replicas
starting at once raced to create the same tables and all but one failed."""

from alembic import context
from sqlalchemy import Connection, text

from mzforge.api.db import Base, make_engine
from mzforge.api.settings import DatabaseTimeouts

config = context.config
target_metadata = Base.metadata

# The key of the PostgreSQL advisory lock held while migrating ("mzforge" in ASCII).
MIGRATION_LOCK_KEY = int.from_bytes(b"mzforge", "big")
# No statement timeout: waiting for the lock while another process migrates, and a migration's
# own statements, may take longer than a request's. A silent network still ends the connection
# (keepalives, tcp_user_timeout).
MIGRATION_TIMEOUTS = DatabaseTimeouts(statement_seconds=0)


def take_migration_lock(connection: Connection) -> None:
    """Waits until no other process migrates this database; the lock ends with the transaction.
    (SQLite: ``BEGIN IMMEDIATE`` takes the write lock, waiting up to the engine's busy timeout;
    the Python driver would otherwise run each DDL statement in a transaction of its own.)"""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = make_engine(url, timeouts=MIGRATION_TIMEOUTS)
    # Our transaction, not Alembic's: Alembic runs every step inside it (an "external"
    # transaction), committed once at the end.
    with engine.connect() as connection, connection.begin():
        take_migration_lock(connection)
        context.configure(connection=connection, target_metadata=target_metadata)
        context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
