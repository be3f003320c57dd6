"""A small vLLM-like OpenAI-compatible server on 127.0.0.1 (aiohttp), backed by a real transformers model.

Like `vllm serve BASE --enable-lora --lora-modules banking=DIR`, it serves the base model under its path and the
LoRA adapter as `banking`; it applies the tokenizer's chat template server-side (400 when there is none), stops
at stop strings (excluded from the text) and answers in vLLM's documented response shapes for /v1/models,
/v1/completions and /v1/chat/completions, with logprobs and usage. Like `vllm serve --api-key KEY`, when `api_key`
is set every /v1 request must carry `Authorization: Bearer KEY`, or gets 401 {"error": "Unauthorized"}.
Each request's raw bytes (request line, headers, body) are kept in `raw`, authorised or not.

With `"stream": true` it answers as vLLM does: server-sent events, one chunk per token (chat: a first chunk with the
role, then `delta.content` and `logprobs.content` per token; completions: `text` and `logprobs.token_logprobs`), the
finish reason on the last token's chunk, a usage chunk with no choices when `stream_options.include_usage`, then
`data: [DONE]`. `token_gap_s` spaces the tokens; `hold` (an asyncio.Event) holds the stream after `hold_after`
tokens. `scripted`: texts that replace the model's next outputs (one per request, word by word), for tests that
need a given answer.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

NO_CHAT_TEMPLATE = (
    "As of transformers v4.44, default chat template is no longer allowed, so you must provide a chat "
    "template if the tokenizer does not define one."
)


@dataclass
class Completion:
    token_ids: list[int]
    logprobs: list[float]
    tokens: list[str]
    text: str
    finish_reason: str  # "stop" or "length"
    stop_reason: str | None


@dataclass
class FakeVLLMServer:
    peft_model: Any  # a peft PeftModel: base + the adapter served as `lora_name`
    tokenizer: Any
    base_name: str
    lora_name: str = "banking"
    api_key: str | None = None  # None: any key (or none) is accepted, as vLLM without --api-key
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (path, JSON body), authorised only
    raw: list[bytes] = field(default_factory=list)  # every request as received: request line, headers, body
    refused: int = 0  # requests answered 401
    completions: list[Completion] = field(default_factory=list)
    scripted: deque[str] = field(default_factory=deque)  # next outputs, instead of the model's
    token_gap_s: float = 0.0  # between streamed tokens
    hold: asyncio.Event | None = None  # a stream waits for it after `hold_after` tokens
    hold_after: int = 1
    streamed_tokens: int = 0  # tokens written to streams
    stream_done: asyncio.Event = field(default_factory=asyncio.Event)  # set when a stream's last token is written
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application(middlewares=[self._record_and_authorise])
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/completions", self._completion)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record_and_authorise(self, request: web.Request, handler: Any) -> web.StreamResponse:
        head = f"{request.method} {request.path_qs} HTTP/{request.version.major}.{request.version.minor}\r\n"
        headers = b"".join(name + b": " + value + b"\r\n" for name, value in request.raw_headers)
        self.raw.append(head.encode() + headers + b"\r\n" + await request.read())
        if self.api_key is not None and request.path.startswith("/v1"):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or token != self.api_key:
                self.refused += 1
                return web.json_response({"error": "Unauthorized"}, status=401)
        return await handler(request)

    async def _models(self, request: web.Request) -> web.Response:
        created = int(time.time())
        data = [{"id": self.base_name, "object": "model", "created": created, "owned_by": "vllm",
                 "root": self.base_name, "parent": None, "max_model_len": 512},
                {"id": self.lora_name, "object": "model", "created": created, "owned_by": "vllm",
                 "root": "/adapters/banking", "parent": self.base_name, "max_model_len": None}]
        return web.json_response({"object": "list", "data": data})

    async def _completion(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.path, body))
        if (error := self._check_model(body)) is not None:
            return error
        ids = self.tokenizer(body["prompt"], add_special_tokens=True)["input_ids"]
        out = await self._generate(body, ids)
        if body.get("stream"):
            return await self._stream(request, body, ids, out, chat=False)
        logprobs = None
        if body.get("logprobs") is not None:
            offsets, pos = [], 0
            for token in out.tokens:
                offsets.append(pos)
                pos += len(token)
            logprobs = {"text_offset": offsets, "token_logprobs": out.logprobs, "tokens": out.tokens,
                        "top_logprobs": [{t: lp} for t, lp in zip(out.tokens, out.logprobs, strict=True)]}
        choice = {"index": 0, "text": out.text, "logprobs": logprobs, "finish_reason": out.finish_reason,
                  "stop_reason": out.stop_reason, "prompt_logprobs": None}
        return web.json_response({"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
                                  "created": int(time.time()), "model": body["model"], "choices": [choice],
                                  "usage": _usage(len(ids), len(out.token_ids))})

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.path, body))
        if (error := self._check_model(body)) is not None:
            return error
        if not getattr(self.tokenizer, "chat_template", None):
            return _error(400, "BadRequestError", NO_CHAT_TEMPLATE)
        prompt = self.tokenizer.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        out = await self._generate(body, ids)
        if body.get("stream"):
            return await self._stream(request, body, ids, out, chat=True)
        logprobs = None
        if body.get("logprobs"):
            content = []
            for token, lp in zip(out.tokens, out.logprobs, strict=True):
                entry = {"token": token, "logprob": lp, "bytes": list(token.encode())}
                content.append({**entry, "top_logprobs": [entry][: body.get("top_logprobs") or 0]})
            logprobs = {"content": content}
        choice = {"index": 0, "message": {"role": "assistant", "content": out.text, "reasoning": None,
                                          "tool_calls": []},
                  "logprobs": logprobs, "finish_reason": out.finish_reason, "stop_reason": out.stop_reason}
        return web.json_response({"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                                  "created": int(time.time()), "model": body["model"], "choices": [choice],
                                  "usage": _usage(len(ids), len(out.token_ids)), "prompt_logprobs": None})

    async def _stream(self, request: web.Request, body: dict[str, Any], ids: list[int], out: Completion, *,
                      chat: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        kind, prefix = ("chat.completion.chunk", "chatcmpl") if chat else ("text_completion", "cmpl")
        head = {"id": f"{prefix}-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()),
                "model": body["model"]}

        async def send(data: Any) -> None:
            await response.write(f"data: {json.dumps(data) if not isinstance(data, str) else data}\n\n".encode())

        if chat:
            await send(head | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                            "logprobs": None, "finish_reason": None}]})
        sent = ""
        for n, (token, lp) in enumerate(zip(out.tokens, out.logprobs, strict=True)):
            if self.hold is not None and n == self.hold_after:
                await self.hold.wait()
            elif n and self.token_gap_s:
                await asyncio.sleep(self.token_gap_s)
            last = n == len(out.tokens) - 1
            text = out.text[len(sent):] if last else token  # the stop string is not sent
            sent += text
            entry = {"token": token, "logprob": lp, "bytes": list(token.encode())}
            if chat:
                content = {"content": [entry | {"top_logprobs": [entry]}]}
                choice = {"index": 0, "delta": {"content": text},
                          "logprobs": content if body.get("logprobs") else None}
            else:
                choice = {"index": 0, "text": text,
                          "logprobs": {"tokens": [token], "token_logprobs": [lp], "top_logprobs": [{token: lp}],
                                       "text_offset": [0]} if body.get("logprobs") is not None else None}
            choice |= {"finish_reason": out.finish_reason if last else None,
                       "stop_reason": out.stop_reason if last else None}
            await send(head | {"choices": [choice]})
            self.streamed_tokens += 1
        if (body.get("stream_options") or {}).get("include_usage"):
            await send(head | {"choices": [], "usage": _usage(len(ids), len(out.token_ids))})
        await send("[DONE]")
        self.stream_done.set()
        await response.write_eof()
        return response

    def _check_model(self, body: dict[str, Any]) -> web.Response | None:
        if body.get("model") not in (self.base_name, self.lora_name):
            return _error(404, "NotFoundError", f"The model `{body.get('model')}` does not exist.")
        return None

    async def _generate(self, body: dict[str, Any], ids: list[int]) -> Completion:
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        max_tokens = body.get("max_tokens") or 16
        use_lora = body["model"] == self.lora_name
        if self.scripted:
            words = re.findall(r"\n|[^\s]+ ?", self.scripted.popleft())  # words, and newlines on their own
            out = Completion(list(range(len(words))), [-0.01] * len(words), words, "".join(words), "stop", None)
            self.completions.append(out)
            return out
        out = await asyncio.to_thread(self._greedy, ids, max_tokens, stop, use_lora)
        self.completions.append(out)
        return out

    def _greedy(self, ids: list[int], max_tokens: int, stop: list[str], use_lora: bool) -> Completion:
        """Greedy decoding token by token, stopping at eos, a stop string or max_tokens, as vLLM does."""
        import contextlib

        import torch

        context = contextlib.nullcontext() if use_lora else self.peft_model.disable_adapter()
        generated: list[int] = []
        logprobs: list[float] = []
        finish, stop_reason = "length", None
        with context, torch.no_grad():
            for _ in range(max_tokens):
                logits = self.peft_model(input_ids=torch.tensor([ids + generated])).logits[0, -1]
                log_probs = torch.log_softmax(logits.float(), dim=-1)
                token = int(torch.argmax(log_probs))
                generated.append(token)
                logprobs.append(float(log_probs[token]))
                if token == self.tokenizer.eos_token_id:
                    finish = "stop"
                    break
                text = self.tokenizer.decode(generated, skip_special_tokens=True)
                hit = next((s for s in stop if s in text), None)
                if hit is not None:
                    finish, stop_reason = "stop", hit
                    break
        text = self.tokenizer.decode(generated, skip_special_tokens=True)
        if stop_reason is not None:
            text = text[: text.index(stop_reason)]
        tokens = [self.tokenizer.decode([t]) for t in generated]
        return Completion(generated, logprobs, tokens, text, finish, stop_reason)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens, "prompt_tokens_details": None}


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "param": None, "code": status}},
                             status=status)
