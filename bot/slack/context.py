"""What every Slack listener needs, put in bolt's context by the app's middleware."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.inflight import Work
from bot.runtime import Runtime
from bot.settings import Settings
from bot.slack.admins import AdminDirectory

SERVICES_KEY = "bankbot"


@dataclass
class SlackFeatures:
    """What this workspace allows, learnt from the first refusal so later answers skip a doomed call."""

    set_status: bool = True  # assistant.threads.setStatus in DMs (AI app threads)
    channel_status: bool = True  # assistant.threads.setStatus in channel threads (chat:write, since March 2026)
    streaming: bool = True  # chat.startStream / appendStream / stopStream
    data_visualization: bool = True  # the Block Kit data_visualization block (June 2026); else the PNG chart
    home_blocks: bool = True  # table and chart blocks in the Home tab; else a code-block table


@dataclass
class BotServices:
    runtime: Runtime
    admins: AdminDirectory
    features: SlackFeatures = field(default_factory=SlackFeatures)  # single-workspace mode's workspace
    work: Work = field(default_factory=Work)  # listener tasks running after their ack
    installation_store: Any = None  # OAuth mode: slack-sdk's AsyncSQLAlchemyInstallationStore; None: one workspace
    by_workspace: dict[str, SlackFeatures] = field(default_factory=dict)  # OAuth mode: each workspace's features

    @classmethod
    def create(cls, runtime: Runtime, work: Work | None = None) -> BotServices:
        return cls(runtime, AdminDirectory(runtime.settings.admin_user_ids), work=work or Work())

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def features_of(self, workspace: str | None) -> SlackFeatures:
        """What one workspace allows: with many installs, each learns its own refusals."""
        if self.installation_store is None or not workspace:
            return self.features
        return self.by_workspace.setdefault(workspace, SlackFeatures())


def services(context: Any) -> BotServices:
    return context[SERVICES_KEY]


def workspace(context: Any) -> str | None:
    """The workspace an event came from, as "enterprise:team" (either may be empty: an org-wide install has no
    team on some events); None when bolt knows neither. De-duplication, rate limits and admin checks key on it
    when the app is installed in many workspaces."""
    enterprise, team = context.get("enterprise_id"), context.get("team_id")
    if not (enterprise or team):
        return None
    return f"{enterprise or ''}:{team or ''}"


def multi_workspace(context: Any) -> str | None:
    """`workspace(context)` when the app is installed in many workspaces; None in single-workspace mode."""
    return workspace(context) if services(context).installation_store is not None else None
