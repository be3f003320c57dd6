"""Installs in many workspaces: Slack's OAuth v2 flow on bolt, with slack-sdk's AsyncSQLAlchemyInstallationStore
and AsyncSQLAlchemyOAuthStateStore on bankbot's own database (DATABASE_URL; the tables come from our Alembic
migrations, storage/migrations/versions/0007_slack_installations.py). Bot tokens that expire (token rotation)
are refreshed by bolt before use, through the same Web API client as every other call.
"""

from __future__ import annotations

import logging

from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_EXPIRY_S = 600  # an install link is good for ten minutes
BOT_SCOPES = ("app_mentions:read", "chat:write", "im:history", "im:read", "im:write", "channels:history",
              "groups:history", "commands", "reactions:write", "files:write", "users:read", "assistant:write")


def oauth_settings(settings: Settings, engine: AsyncEngine, client: AsyncWebClient) -> AsyncOAuthSettings:
    """Bolt's OAuth settings: install at /slack/install, Slack redirects to /slack/oauth_redirect (SLACK_REDIRECT_URI
    when set, else what the app's OAuth settings say)."""
    installations = AsyncSQLAlchemyInstallationStore(client_id=settings.slack_client_id, engine=engine)
    states = AsyncSQLAlchemyOAuthStateStore(expiration_seconds=STATE_EXPIRY_S, engine=engine)
    oauth = AsyncOAuthSettings(
        client_id=settings.slack_client_id, client_secret=settings.slack_client_secret, scopes=list(BOT_SCOPES),
        redirect_uri=settings.slack_redirect_uri, install_path=INSTALL_PATH, redirect_uri_path=REDIRECT_PATH,
        installation_store=installations, installation_store_bot_only=True, state_store=states)
    # Bolt's default authorizer refreshes rotating tokens with a client of its own (slack.com, no retries): give it
    # ours, so SLACK_API_URL and the retry handlers apply to token refreshes too.
    oauth.authorize = AsyncInstallationStoreAuthorize(
        logger=logging.getLogger("bot.slack.oauth"), client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret, installation_store=installations, bot_only=True,
        token_rotation_expiration_minutes=oauth.token_rotation_expiration_minutes, client=client)
    return oauth
