"""analyses.idempotency_key and analyses.request_sha256: the Idempotency-Key of POST /v1/analyses

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEX = "ix_analyses_user_id_idempotency_key"


def upgrade() -> None:
    op.add_column("analyses", sa.Column("idempotency_key", sa.String(255), nullable=True))
    op.add_column("analyses", sa.Column("request_sha256", sa.String(64), nullable=True))
    # Unique per user; rows without a key (NULL) never collide, on SQLite and PostgreSQL alike.
    op.create_index(INDEX, "analyses", ["user_id", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="analyses")
    with op.batch_alter_table("analyses") as batch:
        batch.drop_column("request_sha256")
        batch.drop_column("idempotency_key")
