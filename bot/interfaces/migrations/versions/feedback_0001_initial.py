"""feedback: the table as versions before Alembic created it (IF NOT EXISTS: such a file is adopted as it is)."""
import sqlalchemy as sa
from alembic import op

revision = "feedback_0001"
down_revision = None
branch_labels = ("feedback",)


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("rating", sa.Text, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("condensed_query", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("refused", sa.Integer, nullable=False),
        sa.Column("citations", sa.Text, nullable=False),
        sa.Column("timings_ms", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sqlite_autoincrement=True, if_not_exists=True)
    op.create_index("feedback_created", "feedback", ["created_at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("feedback")
