"""The App Home's controls: the model select (Slack shows its confirm dialog first) switches with the same health
check and audit as /llm-switch; "Run benchmark" runs one. Non-admins are refused (a switch attempt is recorded
and audited). The acting admin's Home tab is published again with the outcome."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

from bot.conversation import switching
from bot.slack.context import multi_workspace, services
from bot.slack.home import BENCH_ACTION, SWITCH_ACTION
from bot.slack.listeners.app_home import publish
from bot.slack.listeners.switch_command import audit, bold
from llm.errors import BenchmarkBusyError

log = logging.getLogger(__name__)
SLACK_ACTIONS = (SWITCH_ACTION, BENCH_ACTION)


async def on_switch_selected(ack, body, action, context, client) -> None:
    await ack()
    bot, user, workspace = services(context), body["user"]["id"], multi_workspace(context)
    target = (action.get("selected_option") or {}).get("value", "")
    if not await bot.admins.is_admin(user, client, workspace):
        await switching.record_refusal(bot.runtime, f"slack:{user}", target)
        await audit(bot, client, switching.refusal_audit(f"<@{user}>", "App Home switch to", target))
        await publish(bot, client, user, workspace)
        return
    outcome = await switching.switch(bot.runtime, target, f"slack:{user}", f"<@{user}>", bold)
    await audit(bot, client, outcome.audit)
    await publish(bot, client, user, workspace, notice=outcome.text)


async def on_run_benchmark(ack, body, context, client) -> None:
    await ack()
    bot, user, workspace = services(context), body["user"]["id"], multi_workspace(context)
    if not await bot.admins.is_admin(user, client, workspace):
        await publish(bot, client, user, workspace)
        return
    if bot.runtime.benchmark.running:
        await publish(bot, client, user, workspace, notice="A benchmark is already running.")
        return
    sample = bot.settings.benchmark_sample
    await publish(bot, client, user, workspace, notice=f"Benchmark running on {sample} questions per model…")
    try:
        run = await bot.runtime.benchmark.run(sample=sample, trigger="slack")
        notice = f"Benchmark run #{run.id} finished."
    except BenchmarkBusyError:
        notice = "Another replica is running a benchmark right now."
    except Exception:  # noqa: BLE001 - the admin hears about it; the log has the stack trace
        log.exception("benchmark started from the App Home by %s failed", user)
        notice = "Sorry, the benchmark failed; the details are in the logs."
    await publish(bot, client, user, workspace, notice=notice)


def register(app: AsyncApp) -> None:
    app.action(SWITCH_ACTION)(on_switch_selected)
    app.action(BENCH_ACTION)(on_run_benchmark)
