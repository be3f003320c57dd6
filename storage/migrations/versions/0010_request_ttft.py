"""Each request row records its time to first token (ttft_ms): when the first words reached the user.

Revision ID: 0010_request_ttft
Revises: 0009_context_turns
Create Date: 2026-12-06 02:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_request_ttft"
down_revision: str | Sequence[str] | None = "0009_context_turns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("ttft_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("ttft_ms")
