"""In-process vLLM: the async engine (AsyncLLM) with LoRA enabled, one LoRARequest for the banking adapter.

Needs a CUDA GPU and `pip install bankbot[vllm]`; vllm is imported only in load().
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from llm.errors import ModelResponseError, ModelUnavailableError
from llm.qlora.backend import SERVED_LORA_NAME, RawGeneration, check_adapter_dir, label_token_count, require
from llm.qlora.prompting import LABEL_STOP, MAX_ANSWER_TOKENS, MAX_LABEL_TOKENS, has_chat_template, render_prompt

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the values vLLM accepts for max_lora_rank


def adapter_rank(adapter_dir: Path) -> int:
    """The smallest max_lora_rank vLLM accepts that fits the adapter's r."""
    r = int(json.loads((adapter_dir / "adapter_config.json").read_text()).get("r", 16))
    return next((rank for rank in LORA_RANKS if rank >= r), r)


class VLLMBackend:
    name = "vllm"

    def __init__(self, base: str, adapter_dir: Path, *, engine_kwargs: dict[str, Any] | None = None):
        self.base = base
        self.adapter_dir = Path(adapter_dir)
        self.engine_kwargs = engine_kwargs or {}  # e.g. max_model_len, gpu_memory_utilization, enforce_eager
        self.engine: Any = None
        self.tokenizer: Any = None
        self.lora_request: Any = None
        self._sampling: Any = None
        self._streaming: Any = None  # label and answer, as deltas (RequestOutputKind.DELTA)
        self._loop: asyncio.AbstractEventLoop | None = None  # the engine's own event loop ...
        self._thread: threading.Thread | None = None  # ... and the thread running it

    async def load(self) -> None:
        await asyncio.to_thread(require, "vllm")  # heavy imports and CUDA's start: off the event loop
        torch = await asyncio.to_thread(require, "torch")
        if not await asyncio.to_thread(torch.cuda.is_available):
            raise ModelUnavailableError("the vllm QLoRA backend needs a CUDA GPU; none is visible")
        check_adapter_dir(self.adapter_dir)
        transformers = await asyncio.to_thread(require, "transformers")
        self.tokenizer = await asyncio.to_thread(transformers.AutoTokenizer.from_pretrained, self.base)
        # vLLM builds its async client (zmq sockets, output handler) for the event loop it is created in, and
        # building it loads the weights: minutes. So the engine lives on its own loop in its own thread, and
        # the bot's loop only waits on futures.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vllm-engine", daemon=True)
        self._thread.start()
        try:
            await self._on_engine_loop(self._start_engine())
        except BaseException:
            await self.aclose()
            raise

    async def _start_engine(self) -> None:
        from vllm import SamplingParams
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.lora.request import LoRARequest
        from vllm.sampling_params import RequestOutputKind
        from vllm.v1.engine.async_llm import AsyncLLM

        args = AsyncEngineArgs(
            model=self.base,
            enable_lora=True,
            max_loras=1,
            max_lora_rank=adapter_rank(self.adapter_dir),
            **{"max_model_len": 2048, **self.engine_kwargs},
        )
        self.engine = AsyncLLM.from_engine_args(args)
        self.lora_request = LoRARequest(lora_name=SERVED_LORA_NAME, lora_int_id=1, lora_path=str(self.adapter_dir))
        self._sampling = SamplingParams(
            temperature=0.0, max_tokens=MAX_LABEL_TOKENS, stop=[LABEL_STOP], logprobs=1,
            output_kind=RequestOutputKind.FINAL_ONLY,
        )
        self._streaming = SamplingParams(
            temperature=0.0, max_tokens=MAX_ANSWER_TOKENS, logprobs=1, output_kind=RequestOutputKind.DELTA,
        )

    async def _on_engine_loop(self, coro: Any) -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def generate(self, question: str) -> RawGeneration:
        if self.engine is None:
            raise ModelUnavailableError("the vllm QLoRA backend is not loaded")
        prompt = render_prompt(self.tokenizer, question)
        # Tokenised here exactly as in training (the chat template already holds BOS).
        ids = self.tokenizer(prompt, add_special_tokens=not has_chat_template(self.tokenizer))["input_ids"]
        return await self._on_engine_loop(self._generate_on_engine(ids))

    async def _generate_on_engine(self, ids: list[int]) -> RawGeneration:
        final = None
        async for output in self.engine.generate(
            {"prompt_token_ids": ids}, self._sampling, uuid.uuid4().hex, lora_request=self.lora_request
        ):
            final = output
        if final is None or not final.outputs:
            raise ModelResponseError("vLLM returned no output")
        completion = final.outputs[0]
        token_ids = list(completion.token_ids)
        return RawGeneration(
            text=completion.text,
            token_logprobs=sampled_logprobs(token_ids, completion.logprobs),
            prompt_tokens=len(ids),
            completion_tokens=len(token_ids),
            extra={"backend": self.name, "finish_reason": completion.finish_reason},
        )

    async def stream(self, question: str) -> AsyncIterator[str | RawGeneration]:
        """The label and the answer as the engine generates them (DELTA outputs on the engine's loop, handed over
        through a queue on this one), then the whole generation."""
        if self.engine is None:
            raise ModelUnavailableError("the vllm QLoRA backend is not loaded")
        prompt = render_prompt(self.tokenizer, question)
        ids = self.tokenizer(prompt, add_special_tokens=not has_chat_template(self.tokenizer))["input_ids"]
        here = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        request_id = uuid.uuid4().hex

        async def produce() -> None:  # on the engine's loop
            try:
                async for output in self.engine.generate({"prompt_token_ids": ids}, self._streaming, request_id,
                                                         lora_request=self.lora_request):
                    here.call_soon_threadsafe(queue.put_nowait, output)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                here.call_soon_threadsafe(queue.put_nowait, exc)
            else:
                here.call_soon_threadsafe(queue.put_nowait, None)

        job = asyncio.run_coroutine_threadsafe(produce(), self._loop)
        texts: list[str] = []
        token_ids: list[int] = []
        logprobs: list[float] = []
        finish = None
        try:
            while (output := await queue.get()) is not None:
                if isinstance(output, BaseException):
                    raise ModelResponseError(f"vLLM failed: {type(output).__name__}: {output}") from output
                if not output.outputs:
                    continue
                completion = output.outputs[0]
                new_ids = list(completion.token_ids)
                token_ids += new_ids
                logprobs += sampled_logprobs(new_ids, completion.logprobs)
                texts += [self.tokenizer.decode([t]) for t in new_ids]
                finish = completion.finish_reason or finish
                if completion.text:
                    yield completion.text
        finally:
            if not job.done():  # the consumer went away: stop the request on the engine
                await self._on_engine_loop(self.engine.abort(request_id))
        text = self.tokenizer.decode(token_ids, skip_special_tokens=True)
        yield RawGeneration(text=text, token_logprobs=logprobs, prompt_tokens=len(ids),
                            completion_tokens=len(token_ids), label_tokens=label_token_count(texts),
                            extra={"backend": self.name, "finish_reason": finish, "streamed": True})

    async def aclose(self) -> None:
        if self._loop is None:
            return
        if self.engine is not None:
            engine, self.engine = self.engine, None
            await self._on_engine_loop(_shutdown(engine))
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 30)
        self._loop.close()
        self._loop = None


async def _shutdown(engine: Any) -> None:
    engine.shutdown()  # stops the engine-core process; runs on the engine's loop, which owns its tasks


def sampled_logprobs(token_ids: list[int], logprobs: Any) -> list[float]:
    """Log-prob of each sampled token from vLLM's per-position {token_id: Logprob} (a list or FlatLogprobs)."""
    if logprobs is None:
        return []
    return [float(position[token].logprob) for token, position in zip(token_ids, logprobs, strict=False)
            if position is not None and token in position]
