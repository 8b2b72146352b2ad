"""SQLite: upload ids are never handed out again (AUTOINCREMENT)

Without it SQLite gives a new row the largest id in the table plus one, so deleting the newest
upload gave its id to the next one, and the analyses that had named the deleted upload in their
``upload_ids`` then named another file (of any user). PostgreSQL's sequences never reuse an id.

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _recreate_uploads(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # SQLite cannot alter a table's key: the table is copied into a new one (rows, ids, indexes).
    with op.batch_alter_table("uploads", recreate="always",
                              table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass


def upgrade() -> None:
    _recreate_uploads(True)


def downgrade() -> None:
    _recreate_uploads(False)
