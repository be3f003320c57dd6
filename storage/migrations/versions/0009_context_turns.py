"""Conversation context turns (redacted question and answer, kept CONTEXT_RETENTION_HOURS).

Revision ID: 0009_context_turns
Revises: 0008_slack_installations
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_context_turns"
down_revision: str | Sequence[str] | None = "0008_slack_installations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "context_turns",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("conversation", sa.String(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_context_turns")),
    )
    op.create_index(op.f("ix_context_turns_created_at"), "context_turns", ["created_at"])
    op.create_index("ix_context_turns_conversation_id", "context_turns", ["conversation", "id"])


def downgrade() -> None:
    op.drop_index("ix_context_turns_conversation_id", table_name="context_turns")
    op.drop_index(op.f("ix_context_turns_created_at"), table_name="context_turns")
    op.drop_table("context_turns")
