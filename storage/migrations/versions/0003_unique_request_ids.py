"""Request ids are unique, so a batch retried after an ambiguous failure is written once.

Revision ID: 0003_unique_request_ids
Revises: 0002_leases_and_rate_limits
Create Date: 2026-11-26 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_unique_request_ids"
down_revision: str | Sequence[str] | None = "0002_leases_and_rate_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_index("ix_requests_request_id")
        batch.create_index("ix_requests_request_id", ["request_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_index("ix_requests_request_id")
        batch.create_index("ix_requests_request_id", ["request_id"])
