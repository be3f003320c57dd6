"""Answering one question in Slack: de-duplicate, show progress, ask the pipeline, post (or stream) the answer."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_context import BotServices
from bot.slack_format import HELP, answer_messages, apology, footer_block, too_long
from bot.warmup import WARMING_UP
from llm.errors import AllModelsFailedError, InvalidPromptError
from llm.pipeline import RequestContext

log = logging.getLogger(__name__)

STREAM_MIN_CHARS = 500  # answers at least this long are streamed where Slack allows it
STREAM_BUFFER = 256  # characters per chat.appendStream call
PROGRESS_REACTION = "hourglass_flowing_sand"
UNSUPPORTED = {"not_allowed", "not_allowed_token_type", "unknown_method", "missing_scope", "invalid_auth",
               "method_not_supported_for_channel_type", "not_enabled", "feature_not_enabled"}


@dataclass(frozen=True)
class Question:
    channel: str
    user: str
    text: str  # without the bot's mention
    ts: str  # the user's message
    thread_ts: str | None  # where the answer goes; None: top level (a DM)
    event_id: str | None  # Slack's id of the delivery, for de-duplication
    direct: bool = False  # a DM: progress through assistant.threads.setStatus when Slack allows it


async def answer(question: Question, bot: BotServices, client: AsyncWebClient, *, say_stream: Any = None,
                 set_status: Any = None) -> None:
    """Answer once, whatever the number of deliveries; never raises."""
    if question.event_id and not await _claim(question.event_id, bot):
        log.info("event %s was already handled (a retry or a duplicate delivery); not answering again",
                 question.event_id)
        return
    try:
        await _answer(question, bot, client, say_stream, set_status)
    except Exception:  # noqa: BLE001 - a listener failure must not escape into bolt's logs as a stack trace only
        log.exception("could not answer event %s in %s", question.event_id, question.channel)


async def _claim(event_id: str, bot: BotServices) -> bool:
    """The de-duplication claim across replicas. It fails open: while the database is unreachable the event is
    answered unclaimed (counted), so an outage loses no answer; only a retry of the same event that arrives
    during the outage can then be answered twice."""
    try:
        return await bot.runtime.db.claim_event(event_id)
    except Exception as exc:  # noqa: BLE001 - an unreachable database must not cost the user the answer
        bot.work.unclaimed_answers += 1
        log.warning("could not claim event %s (%s: %s); answering it unclaimed", event_id, type(exc).__name__,
                    (str(exc).splitlines() or [""])[0][:200])
        return True


async def _answer(question: Question, bot: BotServices, client: AsyncWebClient, say_stream, set_status) -> None:
    limit = bot.settings.max_prompt_chars
    if not question.text:
        await post(client, question, [{"text": HELP}])
        return
    if len(question.text) > limit:
        await post(client, question, [{"text": too_long(len(question.text), limit)}])
        return
    allowance = await bot.runtime.rate_limiter.check_slack_user(question.user)
    if not allowance.allowed:
        await post(client, question, [{"text": allowance.message}])
        return
    context = RequestContext(source="slack", user_id=question.user)
    progress = await _show_progress(question, bot, client, set_status)
    try:
        result = await bot.runtime.pipeline.generate(question.text, context)
    except AllModelsFailedError as exc:
        log.error("request %s: every model failed: %s", context.request_id, exc.failures)
        text = WARMING_UP if bot.runtime.warming_up() else apology(context.request_id)
        await post(client, question, [{"text": text}])
    except InvalidPromptError as exc:
        await post(client, question, [{"text": f"Sorry, I can't read that message: {exc}."}])
    except Exception:  # noqa: BLE001 - the user gets the apology; the log gets the stack trace
        log.exception("request %s failed", context.request_id)
        await post(client, question, [{"text": apology(context.request_id)}])
    else:
        footer = footer_block(result) if bot.settings.show_model_footer else None
        if not await _stream(question, bot, say_stream, result.text, footer):
            await post(client, question, answer_messages(result.text, footer))
    finally:
        if progress:
            await _remove_reaction(client, question)


async def post(client: AsyncWebClient, question: Question, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        await client.chat_postMessage(channel=question.channel, thread_ts=question.thread_ts, unfurl_links=False,
                                      unfurl_media=False, **message)


async def _show_progress(question: Question, bot: BotServices, client: AsyncWebClient, set_status) -> bool:
    """setStatus in a DM where Slack allows it (cleared by the reply), else a reaction; True when a reaction."""
    if question.direct and set_status is not None and bot.features.set_status:
        try:
            await set_status("is looking into it…")
            return False
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.info("assistant.threads.setStatus refused (%s); using a reaction instead", error)
            if error in UNSUPPORTED:
                bot.features.set_status = False
        except Exception as exc:  # noqa: BLE001 - progress is cosmetic: a network error must not cost the answer
            log.info("assistant.threads.setStatus failed (%s); using a reaction instead", exc)
    try:
        await client.reactions_add(channel=question.channel, timestamp=question.ts, name=PROGRESS_REACTION)
        return True
    except SlackApiError as exc:
        log.info("could not add the progress reaction: %s", exc.response.get("error"))
        return False
    except Exception as exc:  # noqa: BLE001 - progress is cosmetic: a network error must not cost the answer
        log.info("could not add the progress reaction: %s", exc)
        return False


async def _remove_reaction(client: AsyncWebClient, question: Question) -> None:
    try:
        await client.reactions_remove(channel=question.channel, timestamp=question.ts, name=PROGRESS_REACTION)
    except SlackApiError as exc:
        log.info("could not remove the progress reaction: %s", exc.response.get("error"))
    except Exception as exc:  # noqa: BLE001 - cosmetic, as above
        log.info("could not remove the progress reaction: %s", exc)


async def _stream(question: Question, bot: BotServices, say_stream, text: str, footer: dict | None) -> bool:
    """Stream a long answer with chat.*Stream; False when it was not streamed (so it must be posted)."""
    if say_stream is None or not bot.features.streaming or len(text) < STREAM_MIN_CHARS:
        return False
    streamer = None
    try:
        streamer = await say_stream(buffer_size=STREAM_BUFFER)
        for word in re.findall(r"\S+\s*", text):
            await streamer.append(markdown_text=word)
        await streamer.stop(blocks=[footer] if footer else None)
        return True
    except (SlackApiError, SlackRequestError) as exc:
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
        if streamer is None or streamer.ts is None:
            log.info("chat streaming refused (%s); posting answers as messages", error)
            if error in UNSUPPORTED:
                bot.features.streaming = False
        else:  # the stream broke half-way: the user still gets the whole answer, as a message
            log.warning("chat stream %s failed half-way (%s); posting the whole answer", streamer.ts, error)
        return False
