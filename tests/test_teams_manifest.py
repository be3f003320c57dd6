"""The Teams app package: the manifest declares exactly the commands the code runs, in every scope the bot has,
with icons of the sizes Teams requires; `bankbot teams-package` writes the zip; the layout keeps the core
free of any front end's SDK."""

from __future__ import annotations

import ast
import json
import struct
import zipfile
from pathlib import Path

import pytest

from bot.cli import main
from bot.teams.commands import COMMANDS
from bot.teams.package import MANIFEST_DIR, manifest

REPO = Path(__file__).resolve().parent.parent
APP_ID = "00000000-0000-0000-0000-0000000000a1"


def _png(path: Path) -> tuple[int, int, int]:
    """(width, height, colour type) from the PNG header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, _, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, colour


def test_the_manifests_commands_are_the_codes_in_every_scope():
    [bot] = manifest(APP_ID)["bots"]
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    scopes = set()
    for command_list in bot["commandLists"]:
        assert {c["title"] for c in command_list["commands"]} == set(COMMANDS)
        scopes |= set(command_list["scopes"])
    assert scopes == set(bot["scopes"])


def test_schema_ids_domains_and_icons():
    data = manifest(APP_ID, "bot.bank.example")
    assert data["$schema"].endswith("/v1.22/MicrosoftTeams.schema.json") and data["manifestVersion"] == "1.22"
    assert data["id"] == data["bots"][0]["botId"] == APP_ID
    assert data["validDomains"] == ["bot.bank.example"]
    assert "{{DOMAIN}}" in (MANIFEST_DIR / "manifest.json").read_text()  # the placeholder, filled per package
    assert _png(MANIFEST_DIR / data["icons"]["color"])[:2] == (192, 192)
    assert _png(MANIFEST_DIR / data["icons"]["outline"]) == (32, 32, 6)  # RGBA: a transparent background
    rsc = data["authorization"]["permissions"]["resourceSpecific"]
    assert {"name": "ChannelMessage.Read.Group", "type": "Application"} in rsc  # follow-ups without a mention


def test_a_bad_app_id_or_domain_is_refused():
    with pytest.raises(ValueError, match="GUID"):
        manifest("not-a-guid")
    with pytest.raises(ValueError, match="host name"):
        manifest(APP_ID, "https://bot.example/path")


def test_teams_package_writes_the_zip_to_upload(tmp_path, capsys):
    out = tmp_path / "bankbot.zip"
    with pytest.raises(SystemExit) as exit_code:
        main(["teams-package", "--app-id", APP_ID, "--domain", "bot.bank.example", "--out", str(out)])
    assert exit_code.value.code in (0, None)
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        assert json.loads(package.read("manifest.json"))["validDomains"] == ["bot.bank.example"]


def test_the_conversation_core_imports_no_front_end_sdk():
    forbidden = ("slack_bolt", "slack_sdk", "microsoft_agents")
    files = sorted((REPO / "bot" / "conversation").glob("*.py"))
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
    for package in ("conversation", "slack", "teams", "api"):
        assert (REPO / "bot" / package / "__init__.py").is_file()
