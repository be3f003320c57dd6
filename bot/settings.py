"""All of bankbot's settings: the llm package's, plus the database, HTTP server, Slack and admin ones."""

from __future__ import annotations

import sys

from pydantic import Field, ValidationError

from llm.config import LLMSettings


class Settings(LLMSettings):
    database_url: str = "sqlite+aiosqlite:///./data/bankbot.db"  # PostgreSQL: postgresql+asyncpg://...
    port: int = 3000  # HTTP port of `bankbot serve`
    store_messages: bool = False  # keep the redacted message text in request rows
    user_hash_salt: str | None = None  # salt of hashed user ids; unset: a random one, generated once, in the database
    log_level: str = "INFO"

    # Slack
    slack_bot_token: str | None = None  # xoxb-...
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None  # xapp-...: Socket Mode instead of the Events API
    slack_api_url: str | None = None  # Web API base URL override, e.g. a proxy or a fake in tests
    slack_admin_user_ids: str = ""  # comma-separated; when empty, workspace admins and owners are admins
    admin_channel: str | None = None  # audit lines of /llm-switch go here
    show_model_footer: bool = True  # model, latency and confidence under each answer
    charts: bool = False  # CHARTS=on: /llm-bench summary also shows a chart (native where Slack allows, else a PNG)
    suggested_prompts: str = ("Where is my card?|How do I top up by bank transfer?|"
                              "Why was my card payment declined?|How do I change my PIN?")  # |-separated, at most 4
    stream_min_chars: int = Field(500, ge=0)  # Slack answers longer than this stream; shorter ones are posted
    context_window_min: float = Field(30, ge=0)  # a top-level DM: earlier turns this recent are its context
    context_turns: int = Field(6, ge=0)  # earlier turns of a conversation the LLMs see (0: none)
    context_retention_hours: float = Field(24, gt=0)  # context turns are purged after this long
    slack_client_id: str | None = None  # with SLACK_CLIENT_SECRET (and no SLACK_BOT_TOKEN): install in many workspaces
    slack_client_secret: str | None = None
    slack_redirect_uri: str | None = None  # https://HOST/slack/oauth_redirect (as in the app's OAuth settings)

    # Microsoft Teams: on when the SDK's CONNECTIONS__SERVICE_CONNECTION__SETTINGS__* variables are set (bot/teams/)
    teams_service_url_hosts: str = ""  # comma-separated hosts an activity's serviceUrl may name besides Microsoft's
    teams_admin_aad_ids: str = ""  # comma-separated Entra object ids allowed to run llm-switch and llm-bench
    teams_allowed_tenants: str = ""  # comma-separated tenant ids; when set, other tenants get no answer
    teams_admin_conversation: str | None = None  # Teams conversation id receiving the llm-switch audit lines

    # Dialogue: clarifying questions, hand-off to a person (bot/conversation/clarify.py, handoff.py)
    clarify_margin: float = Field(0.15, ge=0, le=1)  # ask "Do you mean ...?" when the top two are this close
    urgent_intents: str = ("lost_or_stolen_card,compromised_card,card_swallowed,cash_withdrawal_not_recognised,"
                           "card_payment_not_recognised,transfer_not_received_by_recipient")  # answered + a person
    handoff_channel: str | None = None  # Slack channel id receiving hand-off cases
    teams_handoff_conversation: str | None = None  # Teams conversation id receiving hand-off cases
    handoff_expected_minutes: int = Field(30, ge=1)  # what the customer is told to expect
    handoff_silence_hours: float = Field(24.0, gt=0)  # the bot stays silent in a taken case's conversation

    # Durable claims: an acknowledged question is answered even when its replica dies (bot/conversation/durable.py)
    claim_lease_s: float = 20.0  # a replica renews the leases of its questions in flight; past it, another takes over
    sweep_interval_s: float = 5.0  # how often each replica looks for questions whose holder died
    answer_give_up_s: float = 600.0  # older than this, a question gets "sorry for the delay, please ask again"

    # Rate limits (shared by every replica through the database)
    rate_limit_user_per_min: int = 20  # Slack messages per user per minute; 0 disables
    rate_limit_api_per_min: int = 600  # REST API requests per client per minute; 0 disables
    trusted_proxy_hops: int = 0  # load balancers in front of us: the client address is read from X-Forwarded-For

    # REST API
    admin_api_token: str | None = None  # Bearer token of the admin endpoints; they are disabled while unset
    metrics_token: str | None = None  # when set, GET /metrics needs it as a Bearer token

    @property
    def slack_oauth(self) -> bool:
        """Many workspaces through OAuth: client id and secret set, and no single-workspace SLACK_BOT_TOKEN."""
        return bool(self.slack_client_id and self.slack_client_secret and not self.slack_bot_token)

    @property
    def slack_enabled(self) -> bool:
        return bool((self.slack_bot_token or self.slack_oauth) and (self.slack_signing_secret or self.slack_app_token))

    @property
    def prompts(self) -> tuple[str, ...]:
        """SUGGESTED_PROMPTS: the first four non-empty ones."""
        return tuple(p.strip() for p in self.suggested_prompts.split("|") if p.strip())[:4]

    @property
    def admin_user_ids(self) -> frozenset[str]:
        return _csv(self.slack_admin_user_ids)

    @property
    def teams_admins(self) -> frozenset[str]:
        return _csv(self.teams_admin_aad_ids)

    @property
    def teams_tenants(self) -> frozenset[str]:
        return _csv(self.teams_allowed_tenants)

    @property
    def urgent(self) -> frozenset[str]:
        return _csv(self.urgent_intents)

    @property
    def teams_hosts(self) -> tuple[str, ...]:
        return tuple(sorted(_csv(self.teams_service_url_hosts)))


def _csv(value: str) -> frozenset[str]:
    return frozenset(u.strip() for u in value.split(",") if u.strip())


def load_settings() -> Settings:
    """Settings from the environment and `.env`; a bad value stops start-up naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            variable = str(error["loc"][0]).upper() if error["loc"] else "?"
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"  {variable}: {message}")
        sys.exit("bankbot: invalid configuration\n" + "\n".join(lines))
