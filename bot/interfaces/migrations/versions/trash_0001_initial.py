"""trash: deleted articles with their files' bytes, each in one state (see bot/interfaces/trash.py)."""
import sqlalchemy as sa
from alembic import op

revision = "trash_0001"
down_revision = None
branch_labels = ("trash",)


def upgrade() -> None:
    op.create_table(
        "trash",
        sa.Column("entry_id", sa.Text, primary_key=True),
        *(sa.Column(name, sa.Text, nullable=False) for name in ("state", "article_id", "title", "path", "deleted_at",
                                                                 "sha256")),
        sa.Column("content", sa.LargeBinary, nullable=False))
    op.create_index("trash_state", "trash", ["state"])


def downgrade() -> None:
    op.drop_table("trash")
