"""The manifest creates an app that delivers everything the code listens to, with the scopes it uses."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.settings import Settings
from bot.slack.app import LISTENERS, build_slack_app
from tests.fake_slack import BOT_USER_ID, TEAM_ID
from tests.slack_helpers import slack_harness

MANIFEST = Path(__file__).resolve().parent.parent / "manifests" / "slack_app.yaml"
EVENT_SCOPES = {"app_mention": "app_mentions:read", "message.im": "im:history",
                "message.channels": "channels:history", "message.groups": "groups:history",
                "assistant_thread_started": "assistant:write", "app_home_opened": None, "app_context_changed": None,
                "tokens_revoked": None, "app_uninstalled": None}  # None: the event needs no scope
REQUIRED_SCOPES = {"app_mentions:read", "chat:write", "im:history", "im:read", "im:write", "channels:history",
                   "groups:history", "commands", "reactions:write", "files:write", "users:read", "assistant:write"}


# What Slack delivers for each subscription the manifest could hold: a person's message, in a thread where the
# kind of conversation allows one. The registered listeners decide which of these they take.
DELIVERIES = {
    "app_mention": {"type": "app_mention", "text": f"<@{BOT_USER_ID}> where is my card?", "channel": "C1"},
    "message.im": {"type": "message", "channel_type": "im", "text": "where is my card?", "channel": "D1"},
    "message.channels": {"type": "message", "channel_type": "channel", "text": "and now?", "channel": "C1",
                         "thread_ts": "1690000000.000001"},
    "message.groups": {"type": "message", "channel_type": "group", "text": "and now?", "channel": "G1",
                       "thread_ts": "1690000000.000001"},
    "message.mpim": {"type": "message", "channel_type": "mpim", "text": "and now?", "channel": "G2",
                     "thread_ts": "1690000000.000001"},
    "reaction_added": {"type": "reaction_added", "reaction": "eyes", "item": {"type": "message", "channel": "C1"}},
    "app_home_opened": {"type": "app_home_opened", "tab": "home", "channel": "D1"},
    "app_context_changed": {"type": "app_context_changed", "context": {}},
    "assistant_thread_started": {"type": "assistant_thread_started",
                                 "assistant_thread": {"channel_id": "D1", "thread_ts": "1690000000.000001"}},
    "tokens_revoked": {"type": "tokens_revoked", "tokens": {"bot": ["UBOT"]}},
    "app_uninstalled": {"type": "app_uninstalled"},
}
CATCH_ALL = "bot.slack.listeners.other_messages"  # acknowledges and ignores every message nobody else takes


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def _event_request(event: dict) -> AsyncBoltRequest:
    body = {"type": "event_callback", "team_id": TEAM_ID, "event_id": "Ev1",
            "event": event | {"user": "U0001", "ts": "1690000000.000002"}}
    return _with_context(AsyncBoltRequest(body=json.dumps(body), headers={"content-type": ["application/json"]}))


def _command_request(command: str) -> AsyncBoltRequest:
    body = urlencode({"command": command, "text": "", "team_id": TEAM_ID, "user_id": "U0001", "channel_id": "C1"})
    return _with_context(AsyncBoltRequest(body=body,
                                          headers={"content-type": ["application/x-www-form-urlencoded"]}))


def _action_request(action_id: str) -> AsyncBoltRequest:
    payload = {"type": "block_actions", "team": {"id": TEAM_ID}, "user": {"id": "U0001"}, "view": {"type": "home"},
               "actions": [{"action_id": action_id, "block_id": "b", "type": "button"}]}
    return _with_context(AsyncBoltRequest(body=urlencode({"payload": json.dumps(payload)}),
                                          headers={"content-type": ["application/x-www-form-urlencoded"]}))


def _actions() -> set[str]:
    """The action ids listener modules declare (SLACK_ACTIONS): Slack sends them when interactivity is on."""
    return {action for module in LISTENERS for action in getattr(module, "SLACK_ACTIONS", ())}


def _views() -> set[str]:
    """The modal callback ids listener modules declare (SLACK_VIEWS): Slack sends their submissions."""
    return {view for module in LISTENERS for view in getattr(module, "SLACK_VIEWS", ())}


def _view_request(callback_id: str) -> AsyncBoltRequest:
    payload = {"type": "view_submission", "team": {"id": TEAM_ID}, "user": {"id": "U0001"},
               "view": {"type": "modal", "callback_id": callback_id, "private_metadata": "{}", "state": {"values": {}}}}
    return _with_context(AsyncBoltRequest(body=urlencode({"payload": json.dumps(payload)}),
                                          headers={"content-type": ["application/x-www-form-urlencoded"]}))


def _with_context(request: AsyncBoltRequest) -> AsyncBoltRequest:
    request.context["bot_user_id"] = BOT_USER_ID
    return request


async def _registered() -> dict[str, set[str]]:
    """Each listener registered on the built bolt app (module.function), and the deliveries it matches."""
    async with slack_harness() as h:
        app = build_slack_app(h.runtime)
        declared = [c["command"] for c in manifest()["features"]["slash_commands"]]
        probes = {name: _event_request(event) for name, event in DELIVERIES.items()}
        probes |= {command: _command_request(command) for command in [*declared, "/not-declared"]}
        if manifest()["settings"]["interactivity"]["is_enabled"]:
            probes |= {f"action:{action}": _action_request(action) for action in _actions()}
            probes |= {f"view:{view}": _view_request(view) for view in _views()}
        matched = {}
        for listener in app._async_listeners:
            function = listener.ack_function
            matched[f"{function.__module__}.{function.__name__}"] = {name for name, request in probes.items()
                               if await listener.async_matches(req=request, resp=BoltResponse(status=200))}
        return matched


async def test_the_manifest_delivers_exactly_what_the_registered_listeners_take():
    data = manifest()
    subscribed = set(data["settings"]["event_subscriptions"]["bot_events"])
    declared = {c["command"] for c in data["features"]["slash_commands"]}
    registered = await _registered()
    answering = {name: taken for name, taken in registered.items() if not name.startswith(CATCH_ALL)}
    taken = set().union(*answering.values())
    assert all(answering.values()), f"listeners the manifest never delivers anything to: {answering}"
    interactive = data["settings"]["interactivity"]["is_enabled"]
    actions = ({f"action:{action}" for action in _actions()} | {f"view:{view}" for view in _views()}
               if interactive else set())
    assert taken == subscribed | declared | actions  # nothing a listener takes is missing, nothing subscribed unused
    assert "/not-declared" not in taken and any(name.startswith(CATCH_ALL) for name in registered)
    assert {EVENT_SCOPES[e] for e in subscribed} - {None} <= set(data["oauth_config"]["scopes"]["bot"])


def test_every_command_is_declared_with_a_usage_hint():
    for command in manifest()["features"]["slash_commands"]:
        assert command["usage_hint"] and command["url"].endswith("/slack/events")


def test_scopes_socket_mode_toggle_and_placeholder_urls():
    data = manifest()
    assert REQUIRED_SCOPES <= set(data["oauth_config"]["scopes"]["bot"])
    assert "assistant_view" in data["features"]  # Slack requires it for assistant:write
    assert "agent_view" in data["features"] and data["features"]["app_home"]["home_tab_enabled"] is True
    assert data["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")
    assert data["settings"]["socket_mode_enabled"] is False
    assert data["settings"]["event_subscriptions"]["request_url"].endswith("/slack/events")


def test_building_without_tokens_names_the_missing_variable():
    with pytest.raises(ValueError, match="SLACK_BOT_TOKEN"):
        build_slack_app(type("R", (), {"settings": Settings()})())
    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
        build_slack_app(type("R", (), {"settings": Settings(slack_bot_token="xoxb-1")})())
