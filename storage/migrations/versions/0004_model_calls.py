"""One row per model call, the answering model's own latency beside the request's, benchmark queueing apart.

Revision ID: 0004_model_calls
Revises: 0003_unique_request_ids
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_model_calls"
down_revision: str | Sequence[str] | None = "0003_unique_request_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "model_calls",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("model_version", sa.String(), nullable=True),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("error_kind", sa.String(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_calls")),
        sa.UniqueConstraint("request_id", "seq", name=op.f("uq_model_calls_request_id")),
    )
    op.create_index(op.f("ix_model_calls_created_at"), "model_calls", ["created_at"])
    op.create_index("ix_model_calls_model_created_at", "model_calls", ["model", "created_at"])
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("model_latency_ms", sa.Float(), nullable=True))
    with op.batch_alter_table("benchmark_results") as batch:
        batch.add_column(sa.Column("queue_p50_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("benchmark_results") as batch:
        batch.drop_column("queue_p50_ms")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("model_latency_ms")
    op.drop_index("ix_model_calls_model_created_at", table_name="model_calls")
    op.drop_index(op.f("ix_model_calls_created_at"), table_name="model_calls")
    op.drop_table("model_calls")
