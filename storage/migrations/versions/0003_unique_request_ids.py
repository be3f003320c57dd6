"""Request ids are unique, so a batch retried after an ambiguous failure is written once.

A database written before this revision may already hold a request id twice (a retried batch), and a unique
index cannot be built over it: every replica would then fail at start-up, one after the other. So the
duplicates go first, keeping the earliest row (lowest id) of each request id.

Revision ID: 0003_unique_request_ids
Revises: 0002_leases_and_rate_limits
Create Date: 2026-11-26 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_unique_request_ids"
down_revision: str | Sequence[str] | None = "0002_leases_and_rate_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text(  # the index on request_id (not yet unique) serves the lookup
        "DELETE FROM requests WHERE EXISTS (SELECT 1 FROM requests AS earlier"
        " WHERE earlier.request_id = requests.request_id AND earlier.id < requests.id)"))
    with op.batch_alter_table("requests") as batch:
        batch.drop_index("ix_requests_request_id")
        batch.create_index("ix_requests_request_id", ["request_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_index("ix_requests_request_id")
        batch.create_index("ix_requests_request_id", ["request_id"])
