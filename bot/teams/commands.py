"""llm-switch and llm-bench in Teams: the manifest's commandLists (mention and slash triggers), parsed from the
text; same semantics as Slack's (bot/conversation/switching.py, benchmarks.py), tables as Adaptive Cards.

Admins are TEAMS_ADMIN_AAD_IDS (Entra object ids). A refused switch is recorded in the switch audit table and
posted to TEAMS_ADMIN_CONVERSATION; a refused benchmark request is logged."""

from __future__ import annotations

import logging
from typing import Any

from microsoft_agents.activity import Activity, ActivityTypes, ConversationAccount
from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.core.connector import ConnectorClientBase

from bot.conversation import benchmarks, switching
from bot.conversation.benchmarks import HISTORY_DEFAULT, HISTORY_MAX
from bot.teams.cards import card_activity, table_card
from bot.teams.channel import send_private
from bot.teams.format import message
from llm.errors import BenchmarkBusyError

log = logging.getLogger(__name__)

COMMANDS = {
    switching.COMMAND: "Admins: show the models, or switch every replica to one: llm-switch [model]",
    benchmarks.COMMAND: "Admins: benchmark figures: llm-bench summary | run | history [N]",
}
SWITCH_REFUSAL = ("Sorry, only bankbot's admins can switch the model. If you think you should be one, "
                  "ask your Teams admin. (This attempt was recorded.)")
BENCH_REFUSAL = "Sorry, only bankbot's admins can use llm-bench. Ask one of them for the figures."
BENCH_USAGE = (f"Usage:\n\n- `{benchmarks.COMMAND} summary`: the latest benchmark run and live per-model metrics\n"
               f"- `{benchmarks.COMMAND} run`: benchmark every model now\n"
               f"- `{benchmarks.COMMAND} history [N]`: the trend over the last N runs (default {HISTORY_DEFAULT}, "
               f"at most {HISTORY_MAX})\n"
               f"- `{benchmarks.COMMAND} compare`: each routing arm (served, canary, escalation, shadow) with 95% "
               "intervals")


def parse_command(text: str) -> tuple[str, str] | None:
    """(command, arguments) when the text (mention already removed) is a command, with or without its slash."""
    word, _, rest = (text or "").strip().lstrip("/").partition(" ")
    return (word.lower(), rest.strip()) if word.lower() in COMMANDS else None


def bold(text: str) -> str:
    return f"**{text}**"


def code(text: str) -> str:
    return f"`{text}`"


class TeamsCommands:
    def __init__(self, runtime: Any):
        self.runtime = runtime
        self.settings = runtime.settings

    async def run(self, context: TurnContext, user: str, command: str, args: str) -> None:
        admin = user in self.settings.teams_admins
        if command == switching.COMMAND:
            await self.switch(context, user, args, admin)
        else:
            await self.bench(context, user, args, admin)

    async def switch(self, context: TurnContext, user: str, target: str, admin: bool) -> None:
        who = context.activity.from_property.name or user
        if not admin:
            await switching.record_refusal(self.runtime, f"teams:{user}", target)
            await send_private(context, message(SWITCH_REFUSAL))
            await self.audit(context, switching.refusal_audit(who, switching.COMMAND, target))
            return
        outcome = await switching.run(self.runtime, target, f"teams:{user}", who, bold)
        if outcome is None:  # no argument: the choices and the whole routing policy
            await send_private(context, message(await switching.choices_text(self.runtime, bold, code,
                                                                             switching.COMMAND)))
            return
        if outcome.audit:
            await self.audit(context, outcome.audit)
        await send_private(context, message(outcome.text))

    async def bench(self, context: TurnContext, user: str, args: str, admin: bool) -> None:
        parsed = benchmarks.parse(args)
        if parsed is None:
            await send_private(context, message(BENCH_USAGE))
            return
        if not admin:
            log.warning("llm-bench %s refused: Teams user %s is not an admin", args, user)
            await send_private(context, message(BENCH_REFUSAL))
            return
        form, n = parsed
        if form == "compare":
            await self._figures(context, await benchmarks.comparison(self.runtime), "No routed requests in the "
                                f"{benchmarks.WINDOW_NAME} yet.")
            return
        if form == "history":
            figures = benchmarks.history(await self.runtime.db.latest_benchmark_runs(n))
            await self._figures(context, figures, "No benchmark has run yet. Start one with `llm-bench run`.")
            return
        run = await benchmarks.latest_run(self.runtime)
        if form == "run":
            if self.runtime.benchmark.running:
                await send_private(context, message("A benchmark is already running; its table will be posted "
                                                    "when it is done."))
                return
            await context.send_activity(message(f"Benchmark started on {self.settings.benchmark_sample} questions "
                                                "per model; the table follows when it is done."))
            try:
                done = await self.runtime.benchmark.run(sample=self.settings.benchmark_sample, trigger="teams")
            except BenchmarkBusyError:
                await send_private(context, message("Another replica is running a benchmark right now; see "
                                                    "`llm-bench summary` when it is done."))
                return
            run = done.to_dict() | {"started_at": done.started_at}
        figures = benchmarks.summary(run, await benchmarks.live_metrics(self.runtime))
        await self._figures(context, figures, "No benchmark has run yet and no requests were served. "
                                              "Start one with `llm-bench run`.")
        if (dialogue := await benchmarks.dialogue(self.runtime)) is not None:  # clarify, hand-off, feedback
            await self._figures(context, dialogue, "")

    async def _figures(self, context: TurnContext, figures: benchmarks.Figures | None, empty: str) -> None:
        if figures is None:
            await context.send_activity(message(empty))
        else:
            await context.send_activity(card_activity(table_card(figures)))

    async def audit(self, context: TurnContext, line: str) -> None:
        """The line, in TEAMS_ADMIN_CONVERSATION when it is set (same service as the command's)."""
        conversation = self.settings.teams_admin_conversation
        if not conversation:
            return
        activity = Activity(type=ActivityTypes.message, text=line, text_format="markdown",
                            conversation=ConversationAccount(id=conversation),
                            from_property=context.activity.recipient)
        try:
            await context.services.get(ConnectorClientBase).conversations.send_to_conversation(conversation,
                                                                                                activity)
        except Exception as exc:  # noqa: BLE001 - the switch happened; the audit table has it either way
            log.warning("could not post the audit line to %s: %s", conversation, type(exc).__name__)
