"""Gemini through Google's maintained SDK, google-genai (`from google import genai`).

Each call sends the redacted message with a system instruction holding the 77 intents and the
knowledge-base answers, and asks for JSON: {"intent", "confidence", "answer"} (see llm/gemini_prompt.py).

- Timeouts: one deadline of GEMINI_TIMEOUT_S covers the whole call, retries included; the same figure
  bounds each HTTP attempt.
- Retries: the SDK's HttpRetryOptions retries 408, 429 and 5xx with exponential backoff and jitter.
- Tokens come from `usage_metadata`; thinking tokens count as output, as Google bills them.
- Cost: tokens x the price table in llm/pricing.py (None for a model missing from the table).
- Confidence is the model's own `confidence` field, which it is asked to give as the probability that the
  intent is right. Log-probabilities are not used: the API's `avgLogprobs` averages over every token of the
  reply (mostly the answer text), so it says little about the intent; where present it is kept in
  `extra["avg_logprobs"]`.
- The text the user sees (ANSWER_STYLE=grounded, the default) is Gemini's own answer, written for the question,
  once the faithfulness guard (llm/grounding.py) found every fact of it in the chosen intent's entry or the
  question; otherwise, and with ANSWER_STYLE=knowledge_base, the entry. An out-of-scope message always gets the
  knowledge base's out-of-scope answer. Gemini's wording is kept in `extra["model_answer"]`, the entry's intent in
  `extra["grounded_on"]`.
- Streaming (`stream`): generate_content_stream (SSE); the answer field is decoded as the JSON arrives and each
  completed sentence is checked, then sent.
- A conversation's earlier turns (llm/context.py), redacted, go before the new message.
- Without GEMINI_API_KEY the model is unavailable ("no API key"); nothing is sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aiohttp
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from llm.adapters.base import OUT_OF_SCOPE, GenerationResult, HealthStatus, ModelAdapter
from llm.config import LLMSettings
from llm.context import with_context
from llm.errors import (
    AnswerRejectedError,
    ModelResponseError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from llm.gemini_prompt import parse_reply, response_schema, system_instruction
from llm.grounding import GroundingCounts, StreamedAnswer, ground
from llm.knowledge_base import KnowledgeBase, load_knowledge_base
from llm.model_names import DEFAULT_VERSIONS
from llm.partial_json import PartialString, string_field
from llm.pricing import Price, price_for, price_table
from llm.redact import redact_with_counts

NO_API_KEY = "no API key: set GEMINI_API_KEY"
RETRY_STATUS_CODES = [408, 429, 500, 502, 503, 504]


def version_for(model_id: str) -> str:
    """`gemini-2.5-flash` -> `gemini_2.5_flash_v1.0.0` (the default model gives the default version)."""
    return "gemini_" + model_id.removeprefix("models/").removeprefix("gemini-").replace("-", "_") + "_v1.0.0"


def model_id_for(version: str) -> str:
    """`gemini_2.5_pro_v1.0.0` -> `gemini-2.5-pro`: the model a version string names."""
    return "gemini-" + version.lower().rsplit("_v", 1)[0].removeprefix("gemini_").replace("_", "-")


class GeminiAdapter(ModelAdapter):
    name = "gemini"
    device = "cloud"
    default_version = DEFAULT_VERSIONS["gemini"]  # gemini_2.0_flash_v1.0.0
    sends_data_off_host = True
    default_timeout_s = 30.0

    # Fixed options (the tunable ones are GEMINI_* settings).
    default_api_version: ClassVar[str] = "v1beta"  # google-genai 3.x defaults to v1, which has long lacked
    #                                                systemInstruction/responseSchema; GEMINI_API_VERSION overrides
    retry_max_delay_s: ClassVar[float] = 8.0  # cap of one backoff
    retry_jitter_s: ClassVar[float] = 0.5  # random extra delay, 0..jitter seconds
    temperature: ClassVar[float] = 0.0  # classification: the most likely intent every time
    max_output_tokens: ClassVar[int] = 4096  # a reply is ~90 tokens, but 2.5 models' thinking counts too

    @classmethod
    def servable_versions(cls, settings: LLMSettings) -> list[str]:
        """One version per model id with a known price (GEMINI_MODEL's own first), so every call is costed."""
        ids = dict.fromkeys([settings.gemini_model, *price_table(settings.gemini_price_table)])
        return [version_for(model_id) for model_id in ids]

    def __init__(self, settings: LLMSettings, version: str | None = None):
        super().__init__(version or version_for(settings.gemini_model))
        self.settings = settings
        self.model_id = model_id_for(self.version)  # e.g. "gemini-2.5-flash": the version string says which
        self.timeout_s = settings.gemini_timeout_s
        self.price: Price | None = price_for(self.model_id, price_table(settings.gemini_price_table))
        # our prompt is ~6k tokens (the 77 intents and their answers) and a reply ~100 (thinking aside)
        self.estimated_call_cost_usd = self.price.cost(8_000, 1_000) if self.price else None
        self.client: genai.Client | None = None
        self.kb: KnowledgeBase | None = None
        self.config: types.GenerateContentConfig | None = None
        self.grounding = GroundingCounts()

    async def load(self) -> None:
        if not self.settings.gemini_api_key:
            raise ModelUnavailableError(NO_API_KEY)
        if self.client is not None:
            return
        self.kb = await asyncio.to_thread(load_knowledge_base)
        self.config = types.GenerateContentConfig(
            system_instruction=system_instruction(self.kb),
            response_mime_type="application/json",
            response_schema=response_schema(self.kb),
            temperature=self.temperature,
            max_output_tokens=self.max_output_tokens,
        )
        self.client = genai.Client(api_key=self.settings.gemini_api_key, vertexai=False,
                                   http_options=self.http_options())

    def http_options(self) -> types.HttpOptions:
        return types.HttpOptions(
            base_url=self.settings.gemini_base_url,  # None: Google's endpoint
            api_version=self.settings.gemini_api_version or self.default_api_version,
            timeout=int(self.timeout_s * 1000),  # milliseconds, per HTTP attempt
            retry_options=types.HttpRetryOptions(
                attempts=self.settings.gemini_retry_attempts,
                initial_delay=self.settings.gemini_retry_initial_delay_s,
                max_delay=self.retry_max_delay_s,
                exp_base=2.0,
                jitter=self.retry_jitter_s,
                http_status_codes=RETRY_STATUS_CODES,
            ),
        )

    async def health_check(self) -> HealthStatus:
        if not self.settings.gemini_api_key:
            return HealthStatus(False, NO_API_KEY)  # no network call
        try:
            await self.load()
        except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
            return HealthStatus(False, f"{type(exc).__name__}: {exc}")
        return await super().health_check()

    async def _generate(self, prompt: str) -> GenerationResult:
        if self.client is None or self.kb is None:
            await self.load()
        assert self.client is not None and self.kb is not None
        redacted, redactions = redact_with_counts(prompt)  # nothing personal leaves the host
        started = time.perf_counter()
        response = await self._call(with_context(redacted))
        latency_ms = (time.perf_counter() - started) * 1000

        reply = parse_reply(_reply_text(response), self.kb.intents)
        if reply.intent == OUT_OF_SCOPE:
            text, grounding = self.kb.out_of_scope_answer, {"grounded_on": OUT_OF_SCOPE, "grounding": "off"}
        else:
            text, grounding = ground(reply.answer, reply.intent, self.kb.answer(reply.intent), redacted,
                                     self.settings.answer_style)
        return self._result(response, reply, text, grounding | {"redactions": redactions}, latency_ms)

    async def _stream(self, prompt: str) -> AsyncIterator[str | GenerationResult]:
        """Gemini's answer as it is written (generate_content_stream), sentence by sentence once checked."""
        if self.client is None or self.kb is None:
            await self.load()
        assert self.client is not None and self.kb is not None
        redacted, redactions = redact_with_counts(prompt)
        started = time.perf_counter()
        chunks = await self._open_stream(with_context(redacted))
        raw, last, field, answer = "", None, PartialString("answer"), None
        while (chunk := await self._next(chunks)) is not None:
            last = chunk
            raw += _chunk_text(chunk)
            if answer is None and (intent := string_field(raw, "intent")) is not None:
                if intent != OUT_OF_SCOPE and intent not in self.kb.intents:
                    continue  # parse_reply rejects it at the end
                entry = self.kb.answer(intent)
                style = self.settings.answer_style if intent != OUT_OF_SCOPE else "knowledge_base"
                answer = StreamedAnswer(intent, entry, redacted, style)
                for piece in answer.start():
                    yield piece
            if answer is not None:
                for piece in answer.feed(field.feed(raw)):
                    yield piece
        if last is None:
            raise ModelResponseError(f"{self.model_id}: the stream ended without a chunk")
        reply = parse_reply(raw, self.kb.intents)
        if answer is None:  # the intent never parsed while streaming: a malformed reply, rejected above
            raise ModelResponseError(f"{self.model_id}: no intent in the streamed reply")
        for piece in answer.finish():
            yield piece
        extra = answer.extra() | {"redactions": redactions, "model_answer": reply.answer}
        yield self._result(last, reply, answer.text, extra, (time.perf_counter() - started) * 1000)

    def _result(self, response: types.GenerateContentResponse, reply: Any, text: str, extra: dict[str, Any],
                latency_ms: float) -> GenerationResult:
        assert self.kb is not None
        self.grounding.count(extra)
        usage = response.usage_metadata or types.GenerateContentResponseUsageMetadata()
        prompt_tokens = usage.prompt_token_count or 0
        thoughts = usage.thoughts_token_count or 0
        completion_tokens = (usage.candidates_token_count or 0) + thoughts
        candidate = response.candidates[0] if response.candidates else None
        return GenerationResult(
            text=text,
            intent=reply.intent,
            latency_ms=latency_ms,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            confidence=reply.confidence,
            model_version=self.version,
            device=self.device,
            cost_usd=self.price.cost(prompt_tokens, completion_tokens) if self.price else None,
            model=self.name,
            extra={
                "model_id": response.model_version or self.model_id,
                "model_answer": reply.answer,
                "confidence_source": "model",
                "avg_logprobs": candidate.avg_logprobs if candidate else None,
                "thoughts_tokens": thoughts,
                "cached_tokens": usage.cached_content_token_count or 0,
                "knowledge_base": self.kb.version,
                **reply.top_intents(),  # the runner-up Gemini named, for a clarifying question
                **extra,
            },
        )

    def get_metrics(self) -> dict[str, Any]:
        return {**super().get_metrics(), **self.grounding.snapshot()}

    async def _call(self, contents: str) -> types.GenerateContentResponse:
        """One generate_content call, retries included, within the per-call deadline."""
        assert self.client is not None
        return await self._bounded(self.client.aio.models.generate_content(
            model=self.model_id, contents=contents, config=self.config))

    async def _open_stream(self, contents: str) -> AsyncIterator[types.GenerateContentResponse]:
        """A generate_content_stream call (retries included until the stream opens)."""
        assert self.client is not None
        return await self._bounded(self.client.aio.models.generate_content_stream(
            model=self.model_id, contents=contents, config=self.config))

    async def _next(self, chunks: AsyncIterator[types.GenerateContentResponse]) -> Any:
        """The stream's next chunk (None at its end), each within the per-call deadline."""
        return await self._bounded(anext(chunks, None))

    async def _bounded(self, call: Any) -> Any:
        """`call` within GEMINI_TIMEOUT_S, its failures in the pipeline's terms."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await call
        except TimeoutError:
            raise ModelTimeoutError(f"no answer from {self.model_id} within {self.timeout_s:g}s") from None
        except genai_errors.APIError as exc:
            raise ModelResponseError(f"{self.model_id}: HTTP {exc.code} {exc.status or ''}: {exc.message}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ModelResponseError(f"cannot reach Gemini: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # a body that is not JSON (a proxy's error page): JSONDecodeError and kin
            raise ModelResponseError(f"unreadable response: {type(exc).__name__}: {str(exc)[:120]}") from exc

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aio.aclose()
            self.client = None


def _chunk_text(chunk: types.GenerateContentResponse) -> str:
    """The text of one streamed chunk (thought parts aside); a blocked prompt is rejected."""
    if not chunk.candidates:
        feedback = chunk.prompt_feedback
        if feedback and feedback.block_reason:
            raise AnswerRejectedError(f"no answer: {feedback.block_reason}")
        return ""
    content = chunk.candidates[0].content
    return "".join(p.text for p in (content.parts or []) if p.text and not p.thought) if content else ""


def _reply_text(response: types.GenerateContentResponse) -> str:
    """The text of the first candidate, without thought parts; AnswerRejectedError when there is none."""
    if not response.candidates:
        feedback = response.prompt_feedback
        reason = feedback.block_reason if feedback and feedback.block_reason else "no candidates"
        raise AnswerRejectedError(f"no answer: {reason}")  # a blocked prompt: this prompt's problem
    candidate = response.candidates[0]
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    if not text:
        raise AnswerRejectedError(f"empty answer (finish reason {candidate.finish_reason})")
    return text
