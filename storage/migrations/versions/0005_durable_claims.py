"""Durable claims: the row that de-duplicates a delivery also records the work (the redacted question, where to
answer, the front end), its state, the replica that holds it with a lease, and the posted answer's message id.

Revision ID: 0005_durable_claims
Revises: 0004_model_calls
Create Date: 2026-12-10 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_durable_claims"
down_revision: str | Sequence[str] | None = "0004_model_calls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)
COLUMNS = ("source", "user_id", "question", "reference", "state", "reason", "holder", "lease_expires_at",
           "attempts", "answer_ref", "updated_at")


def upgrade() -> None:
    with op.batch_alter_table("processed_events") as batch:
        batch.add_column(sa.Column("source", sa.String(), nullable=True))
        batch.add_column(sa.Column("user_id", sa.String(), nullable=True))
        batch.add_column(sa.Column("question", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reference", sa.Text(), nullable=True))
        batch.add_column(sa.Column("state", sa.String(), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("holder", sa.String(), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("answer_ref", sa.String(), nullable=True))
        batch.add_column(sa.Column("updated_at", UTC_DATETIME, nullable=True))
    op.create_index("ix_processed_events_state_lease", "processed_events", ["state", "lease_expires_at"])


def downgrade() -> None:
    op.drop_index("ix_processed_events_state_lease", table_name="processed_events")
    with op.batch_alter_table("processed_events") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
