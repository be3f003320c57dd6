"""The streamed pipeline: deltas pass through as the model writes them; fallback to the next model happens before
the first delta, never after it (then the answer ends with an apology line and the failure is recorded)."""

from __future__ import annotations

import asyncio

import pytest

from llm.config import LLMSettings
from llm.errors import AllModelsFailedError, ModelResponseError
from llm.factory import ModelFactory
from llm.pipeline import BankingLLMPipeline, PipelineOptions, RequestContext
from llm.streaming import APOLOGY_LINE, AnswerInterruptedError, collect, generate_stream
from llm.ttft import ttft_of
from tests.scripted import Scripted, ScriptedAdapter, builders


class StreamingAdapter(ScriptedAdapter):
    """Streams `pieces`; waits for `gates[i]` (when given) before piece i; raises `fail_at` piece's error."""

    def __init__(self, name: str, pieces: list[str], *, gates: dict[int, asyncio.Event] | None = None,
                 fail_at: int | None = None):
        super().__init__(name, default=Scripted("".join(pieces)))
        self.pieces, self.gates, self.fail_at = pieces, gates or {}, fail_at
        self.yielded = 0

    async def _stream(self, prompt):
        self.prompts.append(prompt)
        for i, piece in enumerate(self.pieces):
            if i in self.gates:
                await self.gates[i].wait()
            if i == self.fail_at:
                raise ModelResponseError("the model server went away")
            self.yielded += 1
            yield piece
        yield await self._generate(prompt)


def make_pipeline(db, *adapters):
    factory = ModelFactory(LLMSettings(), builders(*adapters))
    names = [a.name for a in adapters]
    return BankingLLMPipeline(factory, db, PipelineOptions(fallback_order=names), default_model=names[0])


async def test_deltas_pass_through_before_the_model_has_finished(db):
    gate = asyncio.Event()
    model = StreamingAdapter("llm", ["Freeze ", "it now. ", "Then order a new one."], gates={2: gate})
    pipeline = make_pipeline(db, model)
    stream = generate_stream(pipeline, "I lost my card", RequestContext(source="slack"))
    assert [await anext(stream), await anext(stream)] == ["Freeze ", "it now. "]
    assert model.yielded == 2  # the last piece is not written yet
    gate.set()
    deltas, result = await collect(stream)
    assert deltas == ["Then order a new one."] and result.text == "Freeze it now. Then order a new one."
    assert result.extra["ttft_ms"] <= result.latency_ms and result.request_id
    assert ttft_of(pipeline).snapshot("llm")["ttft_count"] == 1
    await db.request_log.flush()
    [row] = await db.request_metrics()
    assert (row["model"], row["count"]) == ("llm", 1)


async def test_a_failure_before_the_first_delta_falls_back(db):
    broken = StreamingAdapter("broken", ["never shown"], fail_at=0)
    backup = StreamingAdapter("backup", ["Backup ", "answer."])
    pipeline = make_pipeline(db, broken, backup)
    deltas, result = await collect(generate_stream(pipeline, "I lost my card"))
    assert deltas == ["Backup ", "answer."] and result.model == "backup" and result.fallback_from == "broken"


async def test_a_failure_after_the_first_delta_ends_with_an_apology_and_no_fallback(db):
    broken = StreamingAdapter("broken", ["Freeze it now. ", "never shown"], fail_at=1)
    backup = StreamingAdapter("backup", ["Backup answer."])
    pipeline = make_pipeline(db, broken, backup)
    seen = []
    with pytest.raises(AnswerInterruptedError) as info:
        async for item in generate_stream(pipeline, "I lost my card"):
            seen.append(item)
    assert seen == ["Freeze it now. ", APOLOGY_LINE] and info.value.shown == "".join(seen)
    assert backup.prompts == []  # never asked: the customer already had words from the first model
    await db.request_log.flush()
    [row] = await db.request_metrics()
    assert row["model"] == "broken" and row["error_rate"] == 1


async def test_a_model_without_streaming_sends_one_delta(db):
    plain = ScriptedAdapter("plain").enqueue("The whole answer at once.")
    deltas, result = await collect(generate_stream(make_pipeline(db, plain), "hello"))
    assert deltas == ["The whole answer at once."] and result.text == deltas[0]


async def test_every_model_failing_raises_with_every_reason(db):
    a = StreamingAdapter("a", ["x"], fail_at=0)
    b = ScriptedAdapter("b")  # nothing queued: fails
    with pytest.raises(AllModelsFailedError) as info:
        await collect(generate_stream(make_pipeline(db, a, b), "hello"))
    assert set(info.value.failures) == {"a", "b"}
