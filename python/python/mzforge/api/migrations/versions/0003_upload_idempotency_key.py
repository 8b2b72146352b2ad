"""uploads.idempotency_key and uploads.request_sha256: the Idempotency-Key of POST /v1/uploads

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEX = "ix_uploads_user_id_idempotency_key"


def upgrade() -> None:
    op.add_column("uploads", sa.Column("idempotency_key", sa.String(255), nullable=True))
    op.add_column("uploads", sa.Column("request_sha256", sa.String(64), nullable=True))
    # As analyses' (0002): unique per user; rows without a key (NULL) never collide.
    op.create_index(INDEX, "uploads", ["user_id", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="uploads")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("request_sha256")
        batch.drop_column("idempotency_key")
