"""Routing: what each model call understood and cost (shadow agreement, escalations), daily spend per model.

Revision ID: 0007_routing
Revises: 0006_dialogue
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_routing"
down_revision: str | Sequence[str] | None = "0006_dialogue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("model_calls") as batch:
        batch.add_column(sa.Column("intent", sa.String(), nullable=True))
        batch.add_column(sa.Column("confidence", sa.Float(), nullable=True))
        batch.add_column(sa.Column("cost_usd", sa.Float(), nullable=True))
        batch.add_column(sa.Column("escalated_from", sa.String(), nullable=True))
    op.create_table(
        "model_spend",
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("day", sa.String(), nullable=False),
        sa.Column("usd", sa.Float(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("model", "day", name=op.f("pk_model_spend")),
    )


def downgrade() -> None:
    op.drop_table("model_spend")
    with op.batch_alter_table("model_calls") as batch:
        batch.drop_column("escalated_from")
        batch.drop_column("cost_usd")
        batch.drop_column("confidence")
        batch.drop_column("intent")
