"""The tables slack-sdk's AsyncSQLAlchemyInstallationStore and AsyncSQLAlchemyOAuthStateStore read and write
(installs in many workspaces, bot/slack/oauth.py), declared on our metadata so that migrations and models
describe one schema (migration 0008). slack-sdk owns the rows: storage only creates and truncates the tables.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, String, Table

from storage.models import Base


def _workspace() -> list[Column]:
    return [Column("id", Integer, primary_key=True, autoincrement=True),
            Column("client_id", String(32), nullable=False), Column("app_id", String(32), nullable=False),
            Column("enterprise_id", String(32)), Column("enterprise_name", String(200))]


def _bot() -> list[Column]:
    return [Column("bot_token", String(200)), Column("bot_id", String(32)), Column("bot_user_id", String(32)),
            Column("bot_scopes", String(1000)), Column("bot_refresh_token", String(200)),
            Column("bot_token_expires_at", DateTime)]


slack_bots = Table(
    "slack_bots", Base.metadata, *_workspace(), Column("team_id", String(32)), Column("team_name", String(200)),
    *_bot(), Column("is_enterprise_install", Boolean, nullable=False), Column("installed_at", DateTime, nullable=False),
    Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),
)

slack_installations = Table(
    "slack_installations", Base.metadata, *_workspace(), Column("enterprise_url", String(200)),
    Column("team_id", String(32)), Column("team_name", String(200)), *_bot(),
    Column("user_id", String(32), nullable=False), Column("user_token", String(200)),
    Column("user_scopes", String(1000)), Column("user_refresh_token", String(200)),
    Column("user_token_expires_at", DateTime), Column("incoming_webhook_url", String(200)),
    Column("incoming_webhook_channel", String(200)), Column("incoming_webhook_channel_id", String(200)),
    Column("incoming_webhook_configuration_url", String(200)),
    Column("is_enterprise_install", Boolean, nullable=False), Column("token_type", String(32)),
    Column("installed_at", DateTime, nullable=False),
    Index("slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id", "installed_at"),
)

slack_oauth_states = Table(
    "slack_oauth_states", Base.metadata, Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(200), nullable=False), Column("expire_at", DateTime, nullable=False),
)
