"""The routing policy every replica follows, kept as JSON in the settings table beside the active model.

- canary: a share of users (sticky, by a salted hash of the user id) is served by another model;
- shadow: a share of requests is also sent, in the background, to a model whose answer is only recorded;
- escalation: an answer whose calibrated confidence is below ``threshold`` is asked again of a stronger model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

POLICY_KEY = "routing_policy"


@dataclass(frozen=True)
class Canary:
    model: str  # a name or version string
    percent: float  # share of users, 0 < percent < 100


@dataclass(frozen=True)
class Shadow:
    model: str
    percent: float = 100.0  # share of requests


@dataclass(frozen=True)
class Escalation:
    model: str
    threshold: float  # escalate when the calibrated confidence is below this
    out_of_scope: bool = False  # also escalate questions the first model called out of scope


@dataclass(frozen=True)
class RoutingPolicy:
    canary: Canary | None = None
    shadow: Shadow | None = None
    escalation: Escalation | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # e.g. the model a policy file names

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k != "extra"}
        return json.dumps(data | self.extra, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> RoutingPolicy:
        """A policy from its JSON; ValueError naming the problem when it is malformed."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError("a JSON object is expected")
            parts = {"canary": Canary, "shadow": Shadow, "escalation": Escalation}
            if any(data.get(key) is not None and not isinstance(data[key], dict) for key in parts):
                raise TypeError("canary, shadow and escalation are objects or null")
            values = {key: (kind(**data[key]) if data.get(key) is not None else None) for key, kind in parts.items()}
            policy = cls(**values, extra={k: v for k, v in data.items() if k not in parts})
            policy.check()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a routing policy: {exc}") from None
        return policy

    def check(self) -> None:
        """ValueError (TypeError for wrong types) naming the problem."""
        for part in (self.canary, self.shadow, self.escalation):
            if part is None:
                continue
            if not isinstance(part.model, str) or not part.model.strip():
                raise TypeError("a model is a name or version string")
            numbers = [getattr(part, key) for key in ("percent", "threshold") if hasattr(part, key)]
            if any(isinstance(v, bool) or not isinstance(v, int | float) or v != v for v in numbers):
                raise TypeError("shares and thresholds are numbers")
        if self.escalation and not isinstance(self.escalation.out_of_scope, bool):
            raise TypeError("out_of_scope is true or false")
        if self.canary and not 0 < self.canary.percent < 100:
            raise ValueError("a canary's share must be between 0 and 100 percent (100: switch instead)")
        if self.shadow and not 0 < self.shadow.percent <= 100:
            raise ValueError("a shadow's share must be above 0 and at most 100 percent")
        if self.escalation and not 0 <= self.escalation.threshold <= 1:
            raise ValueError("an escalation threshold is a confidence between 0 and 1")

    def with_(self, **changes: Any) -> RoutingPolicy:
        return replace(self, **changes)

    def describe(self) -> list[str]:
        """One line per part, for people."""
        lines = [f"canary: {self.canary.model} for {self.canary.percent:g}% of users" if self.canary
                 else "canary: off",
                 f"shadow: {self.shadow.model} on {self.shadow.percent:g}% of requests" if self.shadow
                 else "shadow: off"]
        if self.escalation:
            e = self.escalation
            lines.append(f"escalation: to {e.model} below confidence {e.threshold:.2f}"
                         + (" (out-of-scope questions too)" if e.out_of_scope else ""))
        else:
            lines.append("escalation: off")
        return lines
