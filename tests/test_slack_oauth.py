"""Installs in many workspaces: the OAuth flow stores each installation in our database, events are answered with
their own workspace's token, and tokens_revoked deletes the installation; a question taken over from a dead
replica is answered with its workspace's token too. Signed HTTP against the fake Web API."""

from __future__ import annotations

import json
import re
import time

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

from bot.conversation.sweeper import Sweeper
from bot.server import resumers
from storage.slack_installations import slack_bots, slack_installations, slack_oauth_states
from tests.fake_slack import BOT_USER_ID
from tests.slack_helpers import mention, signed_headers, slack_harness

OAUTH = dict(slack_bot_token=None, slack_client_id="111.222", slack_client_secret="shh")


def _install(team: str) -> dict:
    return {"app_id": "A0001", "authed_user": {"id": f"U{team}"}, "scope": "chat:write,commands", "token_type": "bot",
            "access_token": f"xoxb-{team}", "bot_user_id": BOT_USER_ID, "team": {"id": team, "name": team},
            "enterprise": None, "is_enterprise_install": False}


async def _complete_install(h, team: str, **extra) -> None:
    h.fake.oauth_codes[f"code-{team}"] = _install(team) | extra
    h.fake.teams[f"xoxb-{team}"] = team
    async with h.http.get(h.url + "/slack/install", allow_redirects=False) as page:
        assert page.status in (200, 302)
        state = re.search(r"slack-app-oauth-state=([^;]+)", page.headers["Set-Cookie"]).group(1)
    async with h.http.get(h.url + f"/slack/oauth_redirect?code=code-{team}&state={state}",
                          headers={"Cookie": f"slack-app-oauth-state={state}"}) as done:
        assert done.status == 200, await done.text()


async def _event(h, team: str, event: dict) -> None:
    body = json.dumps({"token": "legacy", "team_id": team, "api_app_id": "A0001", "type": "event_callback",
                       "event_id": f"Ev{team}{time.monotonic_ns()}", "event_time": int(time.time()), "event": event,
                       "authorizations": [{"team_id": team, "user_id": BOT_USER_ID, "is_bot": True}]})
    assert (await h.post("/slack/events", body, signed_headers(body))).status == 200


async def test_the_oauth_callback_stores_an_installation_and_each_team_is_answered_with_its_own_token():
    async with slack_harness(**OAUTH) as h:
        await _complete_install(h, "TA")
        await _complete_install(h, "TB")
        for team in ("TA", "TB"):
            await _event(h, team, mention(f"<@{BOT_USER_ID}> where is my card?", channel=f"C{team}"))
        await h.fake.wait_for(lambda f: len(f.posts()) == 2)
        tokens = {c.params["channel"]: c.token for c in h.fake.calls if c.method == "chat.postMessage"}
        assert tokens == {"CTA": "xoxb-TA", "CTB": "xoxb-TB"}
        async with h.runtime.db.engine.connect() as conn:
            teams = {r.team_id for r in (await conn.execute(slack_bots.select())).all()}
        assert teams == {"TA", "TB"}


async def test_tokens_revoked_removes_that_workspace_installation():
    async with slack_harness(**OAUTH) as h:
        await _complete_install(h, "TA")
        await _complete_install(h, "TB")
        await _event(h, "TA", {"type": "tokens_revoked", "tokens": {"bot": [BOT_USER_ID]}})
        await h.settled()
        async with h.runtime.db.engine.connect() as conn:
            teams = {r.team_id for r in (await conn.execute(slack_bots.select())).all()}
        assert teams == {"TB"}


def test_our_tables_match_the_installed_slack_sdk():
    """Migration 0008 / storage/slack_installations.py declare the columns slack-sdk's stores use."""
    from sqlalchemy import MetaData
    metadata = MetaData()
    sdk_bots = SQLAlchemyInstallationStore.build_bots_table(metadata, "slack_bots")
    sdk_installations = SQLAlchemyInstallationStore.build_installations_table(metadata, "slack_installations")
    for ours, theirs in ((slack_bots, sdk_bots), (slack_installations, sdk_installations)):
        assert [(c.name, type(c.type).__name__) for c in ours.columns] == [
            (c.name, type(c.type).__name__) for c in theirs.columns]
    assert [c.name for c in slack_oauth_states.columns] == ["id", "state", "expire_at"]


async def test_an_expiring_rotated_token_is_refreshed_before_it_is_used():
    """Token rotation: an install whose bot token expires within bolt's rotation window (2 h) is refreshed with
    its refresh token (oauth.v2.access, grant_type=refresh_token) and the answer goes out with the new token."""
    async with slack_harness(**OAUTH) as h:
        await _complete_install(h, "TR", refresh_token="xoxe-1-TR", expires_in=3600)
        await _event(h, "TR", mention(f"<@{BOT_USER_ID}> where is my card?", channel="CTR"))
        await h.fake.wait_for(lambda f: len(f.posts()) == 1)
        refreshes = [c for c in h.fake.calls if c.method == "oauth.v2.access"
                     and c.params.get("grant_type") == "refresh_token"]
        assert refreshes and refreshes[0].params["refresh_token"] == "xoxe-1-TR"
        [post] = [c for c in h.fake.calls if c.method == "chat.postMessage"]
        assert post.token == "xoxb-TR-rotated"
        async with h.runtime.db.engine.connect() as conn:
            tokens = {r.bot_token for r in (await conn.execute(slack_bots.select())).all()}
        assert "xoxb-TR-rotated" in tokens  # the refreshed token is stored for the next event


async def test_a_question_taken_over_from_a_dead_replica_is_answered_with_its_workspace_token(frozen_clock):
    async with slack_harness(**OAUTH) as h:
        await _complete_install(h, "TA")
        await _complete_install(h, "TB")
        where = {"channel": "CTB", "ts": "1800000000.000300", "thread_ts": "1800000000.000300", "direct": False,
                 "workspace": ":TB"}
        assert await h.runtime.db.claim_work(":TB:EvTB1", holder="dead:1", lease_s=10, source="slack",
                                             user_id=":TB:U1", question="where is my card?",
                                             reference=json.dumps(where))
        frozen_clock.advance(11)
        [taken] = await Sweeper(h.runtime, resumers(h.app)).sweep()
        assert taken.key == ":TB:EvTB1"
        await h.fake.wait_for(lambda f: len(f.posts()) == 1)
        [post] = [c for c in h.fake.calls if c.method == "chat.postMessage"]
        assert (post.params["channel"], post.params["thread_ts"], post.token) == ("CTB", "1800000000.000300",
                                                                                  "xoxb-TB")
