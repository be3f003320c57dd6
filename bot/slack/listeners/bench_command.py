"""/llm-bench summary | run | history [N]: benchmark figures in the channel, anything else gets usage help."""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.conversation import benchmarks
from bot.conversation.benchmarks import HISTORY_DEFAULT, HISTORY_MAX, parse
from bot.slack.bench import history_text, summary_text
from bot.slack.charts import latency_accuracy_png
from bot.slack.context import BotServices, services
from llm.errors import BenchmarkBusyError

log = logging.getLogger(__name__)

COMMAND = "/llm-bench"
USAGE = (f"Usage:\n• `{COMMAND} summary`: the latest benchmark run and live per-model metrics\n"
         f"• `{COMMAND} run`: benchmark every model now\n"
         f"• `{COMMAND} history [N]`: the trend over the last N runs (default {HISTORY_DEFAULT}, "
         f"at most {HISTORY_MAX})")


REFUSAL = "Sorry, only bankbot's admins can use /llm-bench. Ask one of them for the figures."


async def on_bench(ack, command, context, client, respond) -> None:
    parsed = parse(command.get("text", ""))
    if parsed is None:
        await ack(text=USAGE)
        return
    form, n = parsed
    bot = services(context)
    if not await bot.admins.is_admin(command["user_id"], client):
        await ack(text=REFUSAL)
        return
    if form == "run":
        if bot.runtime.benchmark.running:
            await ack(text="A benchmark is already running; its table will be posted when it is done.")
            return
        await ack(text=f"Benchmark started on {bot.settings.benchmark_sample} questions per model; "
                       "the table follows when it is done.")
        await run_now(bot, command, client, respond)
        return
    await ack()
    if form == "summary":
        await post_summary(bot, command, client, respond, await benchmarks.latest_run(bot.runtime))
    else:
        await respond(response_type="in_channel", text=history_text(await bot.runtime.db.latest_benchmark_runs(n)))


async def run_now(bot: BotServices, command, client, respond) -> None:
    try:
        run = await bot.runtime.benchmark.run(sample=bot.settings.benchmark_sample, trigger="slack")
    except BenchmarkBusyError:
        await respond(response_type="ephemeral", text="Another replica is running a benchmark right now; "
                                                       f"see `{COMMAND} summary` when it is done.")
        return
    except Exception:  # noqa: BLE001 - the user hears about it; the log has the stack trace
        log.exception("benchmark requested by %s failed", command.get("user_id"))
        await respond(response_type="ephemeral", text="Sorry, the benchmark failed; the details are in the logs.")
        return
    await post_summary(bot, command, client, respond, run.to_dict() | {"started_at": run.started_at})


async def post_summary(bot: BotServices, command, client, respond, run: dict | None) -> None:
    metrics = await benchmarks.live_metrics(bot.runtime)
    await respond(response_type="in_channel", text=summary_text(run, metrics, benchmarks.WINDOW_NAME))
    if bot.settings.charts and run:
        await upload_chart(command, client, run)


async def upload_chart(command, client, run: dict) -> None:
    title = f"Benchmark run #{run['id']}: latency against accuracy"
    png = await asyncio.to_thread(latency_accuracy_png, run["results"], title)
    if png is None:
        return
    try:
        await client.files_upload_v2(channel=command["channel_id"], file=png, filename=f"benchmark-{run['id']}.png",
                                     title=title)
    except SlackApiError as exc:
        log.warning("could not upload the benchmark chart: %s", exc.response.get("error"))


def register(app: AsyncApp) -> None:
    app.command(COMMAND)(on_bench)
