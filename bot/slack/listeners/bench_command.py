"""/llm-bench summary | run | history [N]: benchmark figures in the channel as table blocks (with a text
fallback); anything else gets usage help. With CHARTS=on, the summary's chart follows: a native
data_visualization block where the workspace accepts it, else the matplotlib PNG."""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.conversation import benchmarks
from bot.conversation.benchmarks import HISTORY_DEFAULT, HISTORY_MAX, parse
from bot.slack.bench import figures_messages, history_messages, summary_message
from bot.slack.chart_blocks import chart_text, latency_accuracy_block
from bot.slack.charts import latency_accuracy_png
from bot.slack.context import BotServices, multi_workspace, services
from llm.errors import BenchmarkBusyError

log = logging.getLogger(__name__)

COMMAND = "/llm-bench"
USAGE = (f"Usage:\n• `{COMMAND} summary`: the latest benchmark run and live per-model metrics\n"
         f"• `{COMMAND} run`: benchmark every model now\n"
         f"• `{COMMAND} history [N]`: the trend over the last N runs (default {HISTORY_DEFAULT}, "
         f"at most {HISTORY_MAX})\n"
         f"• `{COMMAND} compare`: each routing arm (served, canary, escalation, shadow) with 95% intervals")
REFUSAL = "Sorry, only bankbot's admins can use /llm-bench. Ask one of them for the figures."
REFUSED_BLOCKS = {"invalid_blocks", "invalid_blocks_format", "unsupported_block_type"}


async def on_bench(ack, command, context, client, respond) -> None:
    parsed = parse(command.get("text", ""))
    if parsed is None:
        await ack(text=USAGE)
        return
    form, n = parsed
    bot = services(context)
    if not await bot.admins.is_admin(command["user_id"], client, multi_workspace(context)):
        await ack(text=REFUSAL)
        return
    where = Where(command["channel_id"], multi_workspace(context))
    if form == "run":
        if bot.runtime.benchmark.running:
            await ack(text="A benchmark is already running; its table will be posted when it is done.")
            return
        await ack(text=f"Benchmark started on {bot.settings.benchmark_sample} questions per model; "
                       "the table follows when it is done.")
        await run_now(bot, where, client, respond, command.get("user_id"))
        return
    await ack()
    if form == "compare":  # each routing arm with intervals (bot/conversation/benchmarks.py)
        figures = await benchmarks.comparison(bot.runtime)
        await respond(response_type="in_channel", text=benchmarks.as_text(figures) if figures else
                      f"No routed requests in the {benchmarks.WINDOW_NAME} yet.")
        return
    if form == "summary":
        await post_summary(bot, where, client, respond, await benchmarks.latest_run(bot.runtime))
    else:
        for message in history_messages(await bot.runtime.db.latest_benchmark_runs(n)):
            await respond(response_type="in_channel", **message)


class Where:
    """The channel a command came from, and its workspace (None in single-workspace mode)."""

    def __init__(self, channel: str, workspace: str | None):
        self.channel, self.workspace = channel, workspace


async def run_now(bot: BotServices, where: Where, client, respond, user: str | None) -> dict | None:
    """Run a benchmark for an admin; the run (as summary() reads it) or None when it could not run."""
    try:
        run = await bot.runtime.benchmark.run(sample=bot.settings.benchmark_sample, trigger="slack")
    except BenchmarkBusyError:
        await respond(response_type="ephemeral", text="Another replica is running a benchmark right now; "
                                                       f"see `{COMMAND} summary` when it is done.")
        return None
    except Exception:  # noqa: BLE001 - the user hears about it; the log has the stack trace
        log.exception("benchmark requested by %s failed", user)
        await respond(response_type="ephemeral", text="Sorry, the benchmark failed; the details are in the logs.")
        return None
    stored = run.to_dict() | {"started_at": run.started_at}
    await post_summary(bot, where, client, respond, stored)
    return stored


async def post_summary(bot: BotServices, where: Where, client, respond, run: dict | None) -> None:
    metrics = await benchmarks.live_metrics(bot.runtime)
    await respond(response_type="in_channel", **summary_message(run, metrics, benchmarks.WINDOW_NAME))
    if (dialogue := await benchmarks.dialogue(bot.runtime)) is not None:  # clarify, hand-off, feedback
        await respond(response_type="in_channel", **figures_messages(dialogue, per_page=99)[0])
    if bot.settings.charts and run:
        await post_chart(bot, where, client, run)


async def post_chart(bot: BotServices, where: Where, client, run: dict) -> None:
    """The native chart where this workspace accepts it (learnt from its first refusal), else the PNG."""
    title = f"Benchmark run #{run['id']}: latency against accuracy"
    features = bot.features_of(where.workspace)
    block = latency_accuracy_block(run["results"], title) if features.data_visualization else None
    if block is not None:
        try:
            await client.chat_postMessage(channel=where.channel, text=f"{title}: {chart_text(run['results'])}",
                                          blocks=[block])
            return
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.info("the data_visualization chart was refused (%s); uploading the PNG instead", error)
            if error in REFUSED_BLOCKS:
                features.data_visualization = False
    await upload_chart(where.channel, client, run, title)


async def upload_chart(channel: str, client, run: dict, title: str) -> None:
    png = await asyncio.to_thread(latency_accuracy_png, run["results"], title)
    if png is None:
        return
    try:
        await client.files_upload_v2(channel=channel, file=png, filename=f"benchmark-{run['id']}.png", title=title)
    except SlackApiError as exc:
        log.warning("could not upload the benchmark chart: %s", exc.response.get("error"))


def register(app: AsyncApp) -> None:
    app.command(COMMAND)(on_bench)
