"""A fake Gemini REST server on 127.0.0.1 for tests: the real google-genai SDK talks to it over HTTP.

It serves `POST /{v1|v1beta}/models/{model}:generateContent` and `:streamGenerateContent?alt=sse` (server-sent
events, one GenerateContentResponse per `data:` event, usage on the last), records every request (path, headers,
raw body bytes) and answers from a script, one step per request:

    fake.script(FakeGemini.reply({"intent": "card_arrival", "confidence": 0.9, "answer": "..."}),
                FakeGemini.status(429), FakeGemini.text("not json"), FakeGemini.delay(2.0, step),
                FakeGemini.stream({...}, pieces=8, gap_s=0.05, hold=event, hold_after=2))

A streamed step sends the reply's JSON text in `pieces`, `gap_s` apart; with `hold`, it waits for that event after
`hold_after` pieces (a test shows the order of events). `sent` records how many pieces went out.

When the script is empty it answers with `fake.default` (None: HTTP 500).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED",
                500: "INTERNAL", 503: "UNAVAILABLE"}


@dataclass
class Step:
    status: int = 200
    body: str = ""  # the raw response body
    delay_s: float = 0.0  # wait before answering
    events: list[str] | None = None  # a stream: the `data:` payloads, in order
    gap_s: float = 0.0  # between two events
    hold: asyncio.Event | None = None  # a stream waits for it after `hold_after` events
    hold_after: int = 0


@dataclass
class Recorded:
    version: str  # "v1" or "v1beta"
    model: str
    headers: dict[str, str]
    body: bytes  # exactly what the SDK sent

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class FakeGemini:
    default: Step | None = None
    steps: deque[Step] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""  # http://127.0.0.1:<port>, set by start()
    sent: int = 0  # stream events written, over every streamed step
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # set when a stream's last event is written
    _runner: web.AppRunner | None = None

    # --- scripting -------------------------------------------------------------------------------------
    @staticmethod
    def reply(answer: dict[str, Any] | str, prompt_tokens: int = 1200, output_tokens: int = 40,
              thoughts_tokens: int | None = None, model_version: str = "gemini-2.0-flash-001") -> Step:
        """A 200 answer whose text is `answer` (a dict is JSON-encoded), with usageMetadata."""
        text = answer if isinstance(answer, str) else json.dumps(answer)
        usage = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": output_tokens,
                 "totalTokenCount": prompt_tokens + output_tokens + (thoughts_tokens or 0)}
        if thoughts_tokens is not None:
            usage["thoughtsTokenCount"] = thoughts_tokens
        body = {
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": "STOP", "avgLogprobs": -0.05}],
            "usageMetadata": usage,
            "modelVersion": model_version,
            "responseId": "fake-response",
        }
        return Step(200, json.dumps(body))

    @staticmethod
    def stream(answer: dict[str, Any] | str, pieces: int = 6, gap_s: float = 0.0, hold: asyncio.Event | None = None,
               hold_after: int = 1, prompt_tokens: int = 1200, output_tokens: int = 40,
               model_version: str = "gemini-2.0-flash-001") -> Step:
        """A streamed 200: the reply's JSON text cut into `pieces` events, usage on the last."""
        text = answer if isinstance(answer, str) else json.dumps(answer)
        size = max(1, -(-len(text) // pieces))
        parts = [text[i:i + size] for i in range(0, len(text), size)]
        events = []
        for n, part in enumerate(parts):
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": part}]}, "index": 0}
            event: dict[str, Any] = {"candidates": [candidate], "modelVersion": model_version,
                                     "responseId": "fake-stream"}
            if n == len(parts) - 1:
                candidate["finishReason"] = "STOP"
                event["usageMetadata"] = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": output_tokens,
                                          "totalTokenCount": prompt_tokens + output_tokens}
            events.append(json.dumps(event))
        return Step(200, "", events=events, gap_s=gap_s, hold=hold, hold_after=hold_after)

    @staticmethod
    def status(code: int, message: str = "scripted error") -> Step:
        """An error in Google's format: {"error": {"code", "message", "status"}}."""
        error = {"code": code, "message": message, "status": STATUS_NAMES.get(code, "UNKNOWN")}
        return Step(code, json.dumps({"error": error}))

    @staticmethod
    def text(body: str, status: int = 200) -> Step:
        """A raw body, e.g. one that is not JSON at all."""
        return Step(status, body)

    @staticmethod
    def delay(seconds: float, step: Step) -> Step:
        return replace(step, delay_s=seconds)

    def script(self, *steps: Step) -> FakeGemini:
        self.steps.extend(steps)
        return self

    # --- server ----------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        version, target = request.match_info["version"], request.match_info["target"]
        model, _, method = target.partition(":")
        if version not in ("v1", "v1beta") or method not in ("generateContent", "streamGenerateContent"):
            return web.json_response({"error": {"code": 404, "message": f"no route {request.path}",
                                                "status": "NOT_FOUND"}}, status=404)
        self.requests.append(Recorded(version, model, dict(request.headers), await request.read()))
        step = self.steps.popleft() if self.steps else (self.default or self.status(500, "script is empty"))
        if step.delay_s:
            await asyncio.sleep(step.delay_s)
        if method == "streamGenerateContent" and step.events is not None:
            return await self._stream(request, step)
        return web.Response(status=step.status, text=step.body, content_type="application/json")

    async def _stream(self, request: web.Request, step: Step) -> web.StreamResponse:
        """Server-sent events as Google sends them for `alt=sse`: `data: {json}` and a blank line each."""
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for n, event in enumerate(step.events or []):
            if step.hold is not None and n == step.hold_after:
                await step.hold.wait()
            elif n and step.gap_s:
                await asyncio.sleep(step.gap_s)
            await response.write(f"data: {event}\r\n\r\n".encode())
            self.sent += 1
        self.finished.set()
        await response.write_eof()
        return response

    async def start(self) -> FakeGemini:
        app = web.Application()
        app.router.add_post("/{version}/models/{target}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # ephemeral port chosen by the OS
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
