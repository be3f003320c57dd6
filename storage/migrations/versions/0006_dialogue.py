"""The dialogue: turns, clarifications (labelled examples), hand-off cases and feedback.

Revision ID: 0006_dialogue
Revises: 0005_durable_claims
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_dialogue"
down_revision: str | Sequence[str] | None = "0005_durable_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dialogue_turns",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("request_id", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("conversation", sa.String(), nullable=False),
        sa.Column("user_hash", sa.String(), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("low", sa.Boolean(), nullable=False),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("intent", sa.String(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("arm", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dialogue_turns")),
    )
    op.create_index(op.f("ix_dialogue_turns_created_at"), "dialogue_turns", ["created_at"])
    op.create_index(op.f("ix_dialogue_turns_request_id"), "dialogue_turns", ["request_id"])
    op.create_index("ix_dialogue_turns_conversation_id", "dialogue_turns", ["conversation", "id"])
    op.create_table(
        "clarifications",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("turn_id", BIG_ID, nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("offered", sa.String(), nullable=False),
        sa.Column("confidences", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("chosen", sa.String(), nullable=True),
        sa.Column("chosen_at", UTC_DATETIME, nullable=True),
        sa.Column("chosen_by", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["turn_id"], ["dialogue_turns.id"], ondelete="CASCADE",
                                name=op.f("fk_clarifications_turn_id_dialogue_turns")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clarifications")),
    )
    op.create_index(op.f("ix_clarifications_created_at"), "clarifications", ["created_at"])
    op.create_index(op.f("ix_clarifications_turn_id"), "clarifications", ["turn_id"])
    op.create_table(
        "handoff_cases",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("opened_at", UTC_DATETIME, nullable=False),
        sa.Column("turn_id", BIG_ID, nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("conversation", sa.String(), nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("intent", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("post_ref", sa.String(), nullable=True),
        sa.Column("taken_by", sa.String(), nullable=True),
        sa.Column("taken_at", UTC_DATETIME, nullable=True),
        sa.Column("resolved_by", sa.String(), nullable=True),
        sa.Column("resolved_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["turn_id"], ["dialogue_turns.id"], ondelete="SET NULL",
                                name=op.f("fk_handoff_cases_turn_id_dialogue_turns")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_cases")),
    )
    op.create_index(op.f("ix_handoff_cases_opened_at"), "handoff_cases", ["opened_at"])
    op.create_index("ix_handoff_cases_conversation_status", "handoff_cases", ["conversation", "status"])
    op.create_table(
        "feedback",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("user_hash", sa.String(), nullable=False),
        sa.Column("positive", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("conversation", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("intent", sa.String(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("arm", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("request_id", "user_hash", name=op.f("uq_feedback_request_id")),
    )
    op.create_index(op.f("ix_feedback_created_at"), "feedback", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_created_at"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_handoff_cases_conversation_status", table_name="handoff_cases")
    op.drop_index(op.f("ix_handoff_cases_opened_at"), table_name="handoff_cases")
    op.drop_table("handoff_cases")
    op.drop_index(op.f("ix_clarifications_turn_id"), table_name="clarifications")
    op.drop_index(op.f("ix_clarifications_created_at"), table_name="clarifications")
    op.drop_table("clarifications")
    op.drop_index("ix_dialogue_turns_conversation_id", table_name="dialogue_turns")
    op.drop_index(op.f("ix_dialogue_turns_request_id"), table_name="dialogue_turns")
    op.drop_index(op.f("ix_dialogue_turns_created_at"), table_name="dialogue_turns")
    op.drop_table("dialogue_turns")
