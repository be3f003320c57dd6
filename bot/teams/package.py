"""`bankbot teams-package`: the app package to sideload in Teams, manifests/teams/manifest.json with the app id
and the public host filled in, and its two icons (color 192×192, outline 32×32 on a transparent background)."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

MANIFEST_DIR = Path(__file__).resolve().parents[2] / "manifests" / "teams"
PLACEHOLDER_DOMAIN = "bankbot.example.com"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def manifest(app_id: str, domain: str = PLACEHOLDER_DOMAIN, source: Path = MANIFEST_DIR) -> dict:
    if not _GUID.match(app_id):
        raise ValueError(f"the app id must be the Entra app's client id (a GUID), not {app_id!r}")
    if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d+)?", domain):
        raise ValueError(f"the domain must be a host name such as {PLACEHOLDER_DOMAIN}, not {domain!r}")
    text = (source / "manifest.json").read_text()
    return json.loads(text.replace("{{APP_ID}}", app_id).replace("{{DOMAIN}}", domain))


def build(out: Path, app_id: str, domain: str = PLACEHOLDER_DOMAIN, source: Path = MANIFEST_DIR) -> Path:
    data = manifest(app_id, domain, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(data, indent=2))
        for icon in (data["icons"]["color"], data["icons"]["outline"]):
            package.write(source / icon, icon)
    return out
