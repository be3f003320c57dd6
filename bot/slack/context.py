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

    set_status: bool = True  # assistant.threads.setStatus (AI app threads only)
    streaming: bool = True  # chat.startStream / appendStream / stopStream


@dataclass
class BotServices:
    runtime: Runtime
    admins: AdminDirectory
    features: SlackFeatures = field(default_factory=SlackFeatures)
    work: Work = field(default_factory=Work)  # listener tasks running after their ack

    @classmethod
    def create(cls, runtime: Runtime, work: Work | None = None) -> BotServices:
        return cls(runtime, AdminDirectory(runtime.settings.admin_user_ids), work=work or Work())

    @property
    def settings(self) -> Settings:
        return self.runtime.settings


def services(context: Any) -> BotServices:
    return context[SERVICES_KEY]
