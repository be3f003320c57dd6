"""Teams is configured through the Agents SDK's own variables (CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID,
__CLIENTSECRET, __TENANTID, __AUTHTYPE, __ANONYMOUS_ALLOWED), read from the environment and from `.env`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

SDK_PREFIXES = ("CONNECTIONS__", "CONNECTIONSMAP__", "AGENTAPPLICATION__")
SERVICE_CONNECTION = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"


def sdk_environment(env_file: str | Path = ".env", environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The SDK's variables: `.env`'s, overridden by the environment's (as for bankbot's own settings)."""
    environ = os.environ if environ is None else environ
    from_file = dotenv_values(env_file) if Path(env_file).is_file() else {}
    merged = {k: v for k, v in from_file.items() if v is not None} | dict(environ)
    return {k: v for k, v in merged.items() if k.upper().startswith(SDK_PREFIXES)}


def setting(env: Mapping[str, str], name: str) -> str | None:
    return env.get(SERVICE_CONNECTION + name) or None


def anonymous_allowed(env: Mapping[str, str]) -> bool:
    return (setting(env, "ANONYMOUS_ALLOWED") or "").strip().lower() in ("1", "true", "yes", "on")


def teams_configured(env: Mapping[str, str]) -> bool:
    """An app registration (client id), or anonymous mode for the Agents Playground."""
    return bool(setting(env, "CLIENTID")) or anonymous_allowed(env)
