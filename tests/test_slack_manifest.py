"""The manifest creates an app that delivers everything the code listens to, with the scopes it uses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.app import LISTENERS, build_slack_app
from bot.settings import Settings
from tests.slack_helpers import slack_harness

MANIFEST = Path(__file__).resolve().parent.parent / "manifests" / "slack_app.yaml"
EVENT_SCOPES = {"app_mention": "app_mentions:read", "message.im": "im:history",
                "message.channels": "channels:history", "message.groups": "groups:history"}
REQUIRED_SCOPES = {"app_mentions:read", "chat:write", "im:history", "im:read", "im:write", "channels:history",
                   "groups:history", "commands", "reactions:write", "files:write", "users:read", "assistant:write"}


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def test_every_listeners_event_is_subscribed_with_its_scope():
    subscribed = set(manifest()["settings"]["event_subscriptions"]["bot_events"])
    scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    needed = {event for module in LISTENERS for event in getattr(module, "SLACK_EVENTS", ())}
    assert needed == {"app_mention", "message.im", "message.channels", "message.groups"}
    assert needed <= subscribed
    assert {EVENT_SCOPES[e] for e in needed} <= scopes


def test_every_command_is_declared_with_a_usage_hint():
    declared = {c["command"]: c for c in manifest()["features"]["slash_commands"]}
    commands = {module.COMMAND for module in LISTENERS if hasattr(module, "COMMAND")}
    assert commands == {"/llm-switch", "/llm-bench"}
    for command in commands:
        assert declared[command]["usage_hint"] and declared[command]["url"].endswith("/slack/events")


def test_scopes_socket_mode_toggle_and_placeholder_urls():
    data = manifest()
    assert REQUIRED_SCOPES <= set(data["oauth_config"]["scopes"]["bot"])
    assert "assistant_view" in data["features"]  # Slack requires it for assistant:write
    assert data["settings"]["socket_mode_enabled"] is False
    assert data["settings"]["event_subscriptions"]["request_url"].endswith("/slack/events")


async def test_the_app_registers_one_listener_per_manifest_entry():
    async with slack_harness() as h:
        app = build_slack_app(h.runtime)
        # 3 event listeners that answer, 1 catch-all for other messages, 2 commands
        assert len(app._async_listeners) == len(LISTENERS) == 6


def test_building_without_tokens_names_the_missing_variable():
    with pytest.raises(ValueError, match="SLACK_BOT_TOKEN"):
        build_slack_app(type("R", (), {"settings": Settings()})())
    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
        build_slack_app(type("R", (), {"settings": Settings(slack_bot_token="xoxb-1")})())
