"""audit: the table as versions before Alembic created it (IF NOT EXISTS: such a file is adopted as it is)."""
import sqlalchemy as sa
from alembic import op

revision = "audit_0001"
down_revision = None
branch_labels = ("audit",)


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True),
        *(sa.Column(name, sa.Text, nullable=False) for name in ("time", "action", "file", "content_hash", "client",
                                                                 "detail")),
        sqlite_autoincrement=True, if_not_exists=True)


def downgrade() -> None:
    op.drop_table("audit")
