"""Only Teams may post to /api/messages, only to allowed service URLs, and nothing leaks: tokens, hosts, tenants,
the turn-error handler, anonymous mode; Slack's route and /health are untouched."""

from __future__ import annotations

import logging

from tests.fake_connector import FakeConnector, Identity
from tests.teams_helpers import SDK_ENV, activity, teams_harness, user


async def _sentinel_answered(h) -> None:
    """A properly signed message after the others is answered, and then nothing else was."""
    await h.send(activity("sentinel question", h.connector.url))
    await h.connector.wait_for(lambda c: c.messages())
    await h.settled()


async def test_a_missing_forged_expired_or_misaddressed_token_gets_401_and_no_reply(monkeypatch):
    async with teams_harness(monkeypatch) as h:
        url = h.connector.url
        forged = Identity().token(url)  # a key Teams never published
        expired = h.identity.token(url, expires_in=-3600)
        wrong_audience = h.identity.token(url, audience="someone-elses-app")
        statuses = [(await h.send(activity("hi", url), token=token)).status
                    for token in (None, forged, expired, wrong_audience, "not-a-jwt")]
        assert statuses == [401] * 5
        await _sentinel_answered(h)
        assert h.custom.prompts == ["sentinel question"] and len(h.connector.messages()) == 1


async def test_a_service_url_outside_the_allowed_hosts_gets_nothing_posted(monkeypatch):
    async with teams_harness(monkeypatch, teams_service_url_hosts="") as h:  # 127.0.0.1 no longer allowed
        assert (await h.send(activity("hi", h.connector.url))).status == 401
    async with teams_harness(monkeypatch) as h:
        other = await FakeConnector().start()
        try:  # a token for one host and an activity naming another
            body = activity("hi", other.url.replace("127.0.0.1", "localhost"))
            assert (await h.send(body, token=h.identity.token(h.connector.url))).status == 401
            https_loopback = activity("hi", "http://10.0.0.8/")  # a private address, never in the allow-list
            assert (await h.send(https_loopback)).status == 401
            await _sentinel_answered(h)
            assert other.posted == [] and len(h.connector.messages()) == 1
        finally:
            await other.stop()


async def test_only_allowed_tenants_are_answered_when_the_list_is_set(monkeypatch):
    async with teams_harness(monkeypatch, teams_allowed_tenants="another-tenant") as h:
        assert (await h.send(activity("Where is my card?", h.connector.url))).status == 202
        await h.settled()
        assert h.connector.posted == [] and h.custom.prompts == []


async def test_a_failing_turn_gets_the_apology_with_a_reference_not_the_exception(monkeypatch, caplog):
    caplog.set_level(logging.ERROR)
    async with teams_harness(monkeypatch) as h:
        body = activity("Where is my card?", h.connector.url)
        del body["conversation"]["tenantId"]
        body["channelData"] = "not an object"  # malformed: the handler fails reading the tenant from it
        await h.send(body)
        [reply] = await h.connector.wait_for(lambda c: c.messages())
        assert reply.text.startswith("Sorry") and "reference" in reply.text
        assert "NoneType" not in reply.text and "Error" not in reply.text and "Exception" not in reply.text
        reference = reply.text.rsplit("`", 2)[1]
        assert any(reference in r.getMessage() and r.exc_info for r in caplog.records)


async def test_slack_and_health_are_untouched_by_the_teams_route(monkeypatch):
    async with teams_harness(monkeypatch) as h:
        async with h.http.get(h.url + "/health") as response:
            assert response.status == 200  # no token needed
        async with h.http.post(h.url + "/slack/events", data="{}") as response:
            assert response.status in (404, 405)  # Slack is not configured here; no Teams auth on it either


async def test_anonymous_mode_is_never_silent(monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="bot.teams")
    anonymous = {"CONNECTIONS__SERVICE_CONNECTION__SETTINGS__ANONYMOUS_ALLOWED": "true"}
    for name in SDK_ENV:
        monkeypatch.delenv(name, raising=False)
    async with teams_harness(monkeypatch, sdk_env=anonymous) as h:
        assert any("anonymous mode" in r.getMessage() for r in caplog.records)
        async with h.http.get(h.url + "/ready") as response:
            assert "anonymous" in (await response.json())["teams"]
        await h.send(activity("Where is my card?", h.connector.url, sender=user(2)), token=None)
        [reply] = await h.connector.wait_for(lambda c: c.messages())
        assert reply.text.startswith("Your card is on its way.")
