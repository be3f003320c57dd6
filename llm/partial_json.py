"""Reading a JSON object while it is still being written: a string field's value as its characters arrive.

Gemini streams its structured reply ({"intent": ..., "confidence": ..., "answer": "..."}) in pieces of text; the
answer is shown as it is written, so its characters are decoded before the closing quote has arrived.
"""

from __future__ import annotations

import json
import re

ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class PartialString:
    """The value of one string field of a JSON object being streamed, decoded as far as it has arrived."""

    def __init__(self, key: str):
        self.start = re.compile(rf'"{re.escape(key)}"\s*:\s*"')
        self.pos: int | None = None  # where the value's next undecoded character is in the text
        self.value = ""
        self.closed = False

    def feed(self, text: str) -> str:
        """`text`: the whole reply so far. Returns the value's characters decoded since the last call."""
        if self.closed:
            return ""
        if self.pos is None:
            match = self.start.search(text)
            if match is None:
                return ""
            self.pos = match.end()
        out = []
        i = self.pos
        while i < len(text):
            char = text[i]
            if char == '"':
                self.closed = True
                i += 1
                break
            if char != "\\":
                out.append(char)
                i += 1
                continue
            if i + 1 >= len(text):
                break  # the escape's second half has not arrived
            code = text[i + 1]
            if code == "u":
                if i + 6 > len(text) or (_high(text, i) and i + 12 > len(text)):
                    break  # the escape (or its surrogate pair) has not fully arrived
                out.append(_unicode(text, i))
                i += 6 if not _is_high_surrogate(text, i) else 12
                continue
            out.append(ESCAPES.get(code, code))
            i += 2
        self.pos = i
        new = "".join(out)
        self.value += new
        return new


def _high(text: str, i: int) -> bool:
    return 0xD800 <= int(text[i + 2:i + 6], 16) <= 0xDBFF


def _is_high_surrogate(text: str, i: int) -> bool:
    return _high(text, i) and text[i + 6:i + 8] == "\\u"


def _unicode(text: str, i: int) -> str:
    if _is_high_surrogate(text, i) and i + 12 <= len(text):
        return json.loads(f'"{text[i:i + 12]}"')
    return chr(int(text[i + 2:i + 6], 16))


def string_field(text: str, key: str) -> str | None:
    """A complete string field's value in a partial JSON object, or None until its closing quote arrives."""
    match = re.search(rf'"{re.escape(key)}"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    return json.loads(f'"{match.group(1)}"') if match else None
