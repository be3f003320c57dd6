"""Parsing and validating request bodies and path parameters: a refusal raises ApiError (a 4xx)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.api.errors import ApiError

JSON = "application/json"
MAX_USER_ID_CHARS = 200
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # an X-Request-ID we accept as the reference id


@dataclass(frozen=True)
class ChatRequest:
    message: str  # stripped
    user_id: str | None = None


def body_limit(max_prompt_chars: int) -> int:
    """Bytes a chat body may take: room for every character \\u-escaped, plus the other fields."""
    return 6 * max_prompt_chars + 4096


async def read_json(request: web.Request, limit: int) -> Any:
    """The body as JSON: 415 for another content type, 413 past `limit` bytes, 400 when malformed."""
    if request.content_type != JSON:
        raise ApiError(415, "unsupported_media_type",
                       f"send the body as {JSON} (got {request.content_type or 'no content type'})")
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit) from None
    if len(raw) > limit:
        raise _too_large(limit)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None


def parse_chat(payload: Any, max_prompt_chars: int) -> ChatRequest:
    """`{"message": "...", "user_id": "..."}`; unknown fields are refused, so a typo never goes unnoticed."""
    if not isinstance(payload, dict):
        raise _invalid(f"the body must be a JSON object, not {_json_type(payload)}")
    unknown = sorted(set(payload) - {"message", "user_id"})
    if unknown:
        raise _invalid(f"unknown field(s): {', '.join(unknown)}; allowed: message, user_id")
    if "message" not in payload:
        raise _invalid("the field 'message' is required")
    message = payload["message"]
    if not isinstance(message, str):
        raise _invalid(f"'message' must be a string, not {_json_type(message)}")
    message = message.strip()
    if not message:
        raise _invalid("'message' is empty")
    if len(message) > max_prompt_chars:
        raise _invalid(f"'message' is {len(message)} characters long; the limit is {max_prompt_chars}")
    user_id = payload.get("user_id")
    if "user_id" in payload and (not isinstance(user_id, str) or len(user_id) > MAX_USER_ID_CHARS):
        raise _invalid(f"'user_id' must be a string of at most {MAX_USER_ID_CHARS} characters")
    return ChatRequest(message, user_id or None)


def request_id_from(request: web.Request) -> str | None:
    """The caller's X-Request-ID when it is a sane token (it ends up in logs and the database)."""
    value = request.headers.get("X-Request-ID")
    return value if value is not None and REQUEST_ID.fullmatch(value) else None


def version_pattern(model_names: tuple[str, ...]) -> str:
    """A model name, or a version string that starts with `<name>_` (`custom_model_built_0.0.0`)."""
    names = "|".join(re.escape(name) for name in model_names)
    return rf"^({names})(_[A-Za-z0-9._-]{{1,100}})?$"


def check_version(version: str, pattern: re.Pattern[str], model_names: tuple[str, ...]) -> str:
    """404 for anything that cannot name a model; the factory still resolves what passes."""
    if not pattern.fullmatch(version):
        raise ApiError(404, "unknown_model", f"unknown model {version[:100]!r}: use {', '.join(model_names)} "
                                             "or a version string such as custom_model_built_0.0.0")
    return version


def _invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_request", message)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the body is larger than {limit} bytes")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
             int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def client_id(request: web.Request, trusted_proxy_hops: int = 0) -> str:
    """Who a rate limit counts against: the caller's address.

    Behind `trusted_proxy_hops` proxies of our own (TRUSTED_PROXY_HOPS), the address the outermost one saw,
    read from the right of X-Forwarded-For; entries further left were written by the client and are ignored.
    """
    if trusted_proxy_hops > 0:
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
        if len(hops) >= trusted_proxy_hops:
            return f"ip:{hops[-trusted_proxy_hops]}"
    return f"ip:{request.remote or 'unknown'}"
