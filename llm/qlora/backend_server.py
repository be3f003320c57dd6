"""A remote vLLM OpenAI-compatible server, the production path:

    vllm serve BASE --enable-lora --lora-modules banking=ADAPTER_DIR   (manifests/vllm/)

Called at VLLM_SERVER_URL with the model name `banking`, with VLLM_API_KEY as the Bearer key (a server started
with `--api-key` answers 401 to any other). Chat completions are used, so the server applies the
base model's chat template; a server whose model has no chat template answers 400, and the backend then switches
to plain completions with the training's plain prompt.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from llm.errors import ModelResponseError, ModelUnavailableError
from llm.qlora.backend import SERVED_LORA_NAME, RawGeneration, label_token_count, require
from llm.qlora.prompting import LABEL_STOP, MAX_ANSWER_TOKENS, MAX_LABEL_TOKENS, build_messages, plain_prompt
from llm.qlora.vllm_metrics import kv_cache_usage


class ServerBackend:
    name = "vllm-server"

    def __init__(self, base_url: str, *, model: str = SERVED_LORA_NAME, timeout_s: float = 20.0,
                 api_key: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.api_key = api_key  # None: the server was started without --api-key, and accepts any key
        self.client: Any = None
        self.api = "chat"  # "chat" or "completions"

    async def load(self) -> None:
        openai = await asyncio.to_thread(require, "openai")  # a heavy import: off the event loop
        self.client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key or "EMPTY",
                                         timeout=self.timeout_s, max_retries=0)
        try:
            served = [m.id async for m in self.client.models.list()]
        except openai.AuthenticationError as exc:
            await self.aclose()
            raise ModelUnavailableError(self._refused()) from exc
        except openai.APIError as exc:
            await self.aclose()
            raise ModelUnavailableError(f"vLLM server at {self.base_url} is unreachable: {exc}") from exc
        if self.model not in served:
            await self.aclose()
            listed = ", ".join(served) or "nothing"
            raise ModelUnavailableError(
                f"vLLM server at {self.base_url} does not serve {self.model!r} (it serves {listed}); "
                f"start it with --enable-lora --lora-modules {self.model}=ADAPTER_DIR"
            )

    async def device_utilization(self) -> float | None:
        """How full the GPU's KV cache is (0..1), from the vLLM server's own /metrics; None when unknown."""
        import aiohttp

        root = self.base_url.removesuffix("/v1")
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
                async with session.get(f"{root}/metrics") as response:
                    if response.status != 200:
                        return None
                    return kv_cache_usage(await response.text())
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def generate(self, question: str) -> RawGeneration:
        if self.client is None:
            raise ModelUnavailableError("the vllm-server QLoRA backend is not loaded")
        openai = require("openai")
        try:
            if self.api == "chat":
                try:
                    return await self._chat(question)
                except openai.BadRequestError as exc:
                    if "chat template" not in str(exc).lower():
                        raise
                    self.api = "completions"  # the served model has no chat template
            return await self._completion(question)
        except openai.APIConnectionError as exc:
            raise ModelUnavailableError(f"vLLM server at {self.base_url} is unreachable: {exc}") from exc
        except openai.AuthenticationError as exc:
            raise ModelUnavailableError(self._refused()) from exc
        except openai.APIStatusError as exc:
            raise ModelResponseError(f"vLLM server answered {exc.status_code}: {exc.message}") from exc

    async def stream(self, question: str) -> AsyncIterator[str | RawGeneration]:
        """The label and the answer as the server generates them (`stream=True`), then the whole generation."""
        if self.client is None:
            raise ModelUnavailableError("the vllm-server QLoRA backend is not loaded")
        openai = require("openai")
        try:
            chunks = await self._open_stream(question, openai)
            api = self.api
            texts: list[str] = []
            logprobs: list[float] = []
            usage, finish = None, None
            async for chunk in chunks:
                usage = chunk.usage or usage
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish = choice.finish_reason or finish
                if api == "chat":
                    delta = choice.delta.content or "" if choice.delta else ""
                    items = choice.logprobs.content if choice.logprobs is not None else None
                    logprobs += [item.logprob for item in items or []]
                else:
                    delta = choice.text or ""
                    items = choice.logprobs.token_logprobs if choice.logprobs is not None else None
                    logprobs += [lp for lp in items or [] if lp is not None]
                if delta or items:  # not the first chat chunk, which only names the role
                    texts.append(delta)
                if delta:
                    yield delta
        except openai.APIConnectionError as exc:
            raise ModelUnavailableError(f"vLLM server at {self.base_url} is unreachable: {exc}") from exc
        except openai.AuthenticationError as exc:
            raise ModelUnavailableError(self._refused()) from exc
        except openai.APIStatusError as exc:
            raise ModelResponseError(f"vLLM server answered {exc.status_code}: {exc.message}") from exc
        yield RawGeneration(
            text="".join(texts), token_logprobs=[float(lp) for lp in logprobs],
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else len(logprobs),
            extra={"backend": self.name, "api": api, "finish_reason": finish, "streamed": True},
            label_tokens=label_token_count(texts),
        )

    async def _open_stream(self, question: str, openai: Any) -> Any:
        common = dict(model=self.model, max_tokens=MAX_ANSWER_TOKENS, temperature=0.0, stream=True,
                      stream_options={"include_usage": True})
        if self.api == "chat":
            try:
                return await self.client.chat.completions.create(
                    messages=build_messages(question), logprobs=True, top_logprobs=1, **common)
            except openai.BadRequestError as exc:
                if "chat template" not in str(exc).lower():
                    raise
                self.api = "completions"
        return await self.client.completions.create(prompt=plain_prompt(question), logprobs=1, **common)

    def _refused(self) -> str:
        """Why a 401 came back; the key itself is never part of the message."""
        if self.api_key:
            return (f"vLLM server at {self.base_url} refused VLLM_API_KEY (401 Unauthorized): set it to the key "
                    "the server was started with (--api-key)")
        return (f"vLLM server at {self.base_url} requires an API key (401 Unauthorized): set VLLM_API_KEY to "
                "the key the server was started with (--api-key)")

    async def _chat(self, question: str) -> RawGeneration:
        response = await self.client.chat.completions.create(
            model=self.model, messages=build_messages(question), max_tokens=MAX_LABEL_TOKENS, temperature=0.0,
            stop=[LABEL_STOP], logprobs=True, top_logprobs=1,
        )
        choice = _first_choice(response)
        content = choice.logprobs.content if choice.logprobs is not None else None
        return _raw(response, choice.message.content or "", [item.logprob for item in content or []], "chat")

    async def _completion(self, question: str) -> RawGeneration:
        response = await self.client.completions.create(
            model=self.model, prompt=plain_prompt(question), max_tokens=MAX_LABEL_TOKENS, temperature=0.0,
            stop=[LABEL_STOP], logprobs=1,
        )
        choice = _first_choice(response)
        logprobs = choice.logprobs.token_logprobs if choice.logprobs is not None else None
        return _raw(response, choice.text or "", [lp for lp in logprobs or [] if lp is not None], "completions")

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None


def _first_choice(response: Any) -> Any:
    if not getattr(response, "choices", None):
        raise ModelResponseError("vLLM server returned no choices")
    return response.choices[0]


def _raw(response: Any, text: str, logprobs: list[float], api: str) -> RawGeneration:
    usage = response.usage
    return RawGeneration(
        text=text,
        token_logprobs=[float(lp) for lp in logprobs],
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else len(logprobs),
        extra={"backend": ServerBackend.name, "api": api, "finish_reason": response.choices[0].finish_reason},
    )
