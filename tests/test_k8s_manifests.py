"""manifests/k8s/ matches the code: ports, probe paths, env names, commands, volumes and the shutdown budget."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot import cli_commands
from bot.cli import _parser
from bot.runtime import Runtime
from bot.server import FLUSH_GRACE_S, SHUTDOWN_GRACE_S, build_web_app
from bot.settings import Settings
from tests.scripted import ScriptedAdapter, builders

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "manifests" / "k8s"


def _documents() -> dict[str, dict]:
    docs = [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return {doc["kind"]: doc for doc in docs}


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    return _documents()


def _pod(manifests, kind: str) -> dict:
    return manifests[kind]["spec"]["template"]["spec"]


def _bankbot_containers(manifests) -> list[dict]:
    return [*_pod(manifests, "Deployment")["containers"], *_pod(manifests, "Job").get("initContainers", []),
            *_pod(manifests, "Job")["containers"]]


def _code_env_names() -> set[str]:
    """Variables the code reads from the environment itself, besides Settings (e.g. XDG_CACHE_HOME)."""
    sources = [p.read_text() for package in ("bot", "llm", "storage") for p in (REPO / package).rglob("*.py")]
    return {name for text in sources for name in re.findall(r"os\.environ\.get\(\"([A-Z0-9_]+)\"", text)}


def test_every_kind_is_there(manifests):
    assert {"Deployment", "Service", "ConfigMap", "Secret", "Job", "PersistentVolumeClaim"} <= set(manifests)


def test_env_names_are_settings_and_their_values_parse(manifests, monkeypatch):
    fields = {name.upper() for name in Settings.model_fields}
    config, secret = manifests["ConfigMap"]["data"], manifests["Secret"]["stringData"]
    explicit = {e["name"] for c in _bankbot_containers(manifests) for e in c.get("env", [])}
    assert set(config) | set(secret) <= fields, "ConfigMap/Secret names that no setting reads"
    assert explicit <= fields | _code_env_names(), "container env names that the code never reads"
    assert not set(config) & set(secret)
    for name, value in (config | secret).items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # the validators accept every value
    assert str(settings.model_dir) == config["MODEL_DIR"]


def test_the_configmap_holds_the_custom_env_preset(manifests):
    preset = dict(line.split("=", 1) for line in (REPO / ".env.custom").read_text().splitlines()
                  if line.strip() and not line.startswith("#"))
    assert preset and preset.items() <= manifests["ConfigMap"]["data"].items()


def test_the_secret_holds_the_secrets_and_the_configmap_none(manifests):
    secret, config = manifests["Secret"]["stringData"], manifests["ConfigMap"]["data"]
    for name in ("DATABASE_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "GEMINI_API_KEY", "ADMIN_API_TOKEN",
                 "METRICS_TOKEN"):
        assert name in secret
    assert not [n for n in config if re.search(r"TOKEN|SECRET|KEY|PASSWORD|DATABASE_URL", n)]
    for container in _bankbot_containers(manifests):
        refs = [(kind, ref["name"]) for source in container["envFrom"] for kind, ref in source.items()]
        assert refs == [("configMapRef", manifests["ConfigMap"]["metadata"]["name"]),
                        ("secretRef", manifests["Secret"]["metadata"]["name"])]


def test_ports_match_the_setting_and_the_service(manifests):
    port = int(manifests["ConfigMap"]["data"].get("PORT", Settings.model_fields["port"].default))
    [container] = _pod(manifests, "Deployment")["containers"]
    [http] = [p for p in container["ports"] if p["name"] == "http"]
    assert http["containerPort"] == port == Settings.model_fields["port"].default
    service = manifests["Service"]["spec"]
    assert [p["targetPort"] for p in service["ports"]] == ["http"]
    assert service["selector"].items() <= manifests["Deployment"]["spec"]["template"]["metadata"]["labels"].items()


async def test_probe_paths_are_routes_of_the_server(manifests):
    settings = Settings(slack_bot_token="xoxb-test", slack_signing_secret="secret", benchmark_every_n=0)
    runtime = await Runtime.create(settings, builders=builders(ScriptedAdapter("custom")))
    try:
        app = build_web_app(runtime)
        routes = {(r.method, r.resource.canonical) for r in app.router.routes()}
    finally:
        await runtime.aclose()
    [container] = _pod(manifests, "Deployment")["containers"]
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")
              if kind in container}
    assert probes["readinessProbe"]["path"] == "/ready" and probes["livenessProbe"]["path"] == "/health"
    for probe in probes.values():
        assert ("GET", probe["path"]) in routes
        assert probe["port"] == "http"


def _parse(command: list[str]):
    assert command[0] == "bankbot"
    return _parser().parse_args(command[1:])


def test_commands_are_bankbot_subcommands_and_replicas_never_train(manifests):
    [serve] = _pod(manifests, "Deployment")["containers"]
    args = _parse(serve["command"] + serve.get("args", []))
    assert args.handler is cli_commands.cmd_serve and args.no_train
    job = _pod(manifests, "Job")
    steps = [_parse(c["command"] + c.get("args", [])).handler for c in [*job["initContainers"], *job["containers"]]]
    assert steps == [cli_commands.cmd_db_upgrade, cli_commands.cmd_train_custom]


def test_the_job_trains_into_the_volume_the_replicas_read(manifests):
    model_dir = manifests["ConfigMap"]["data"]["MODEL_DIR"]

    def mounted_claim(pod: dict, container: dict) -> str:
        [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == model_dir]
        [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        return volume["persistentVolumeClaim"]["claimName"]

    job, deployment = _pod(manifests, "Job"), _pod(manifests, "Deployment")
    [train], [serve] = job["containers"], deployment["containers"]
    claim = manifests["PersistentVolumeClaim"]["metadata"]["name"]
    assert mounted_claim(job, train) == mounted_claim(deployment, serve) == claim
    assert "ReadWriteMany" in manifests["PersistentVolumeClaim"]["spec"]["accessModes"]  # Job and replicas at once


def test_the_grace_period_covers_the_pre_stop_pause_and_the_shutdown_budget(manifests):
    pod = _pod(manifests, "Deployment")
    [container] = pod["containers"]
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep" and float(sleep[1]) > 0
    assert pod["terminationGracePeriodSeconds"] > float(sleep[1]) + SHUTDOWN_GRACE_S + FLUSH_GRACE_S


def test_the_qlora_server_url_points_at_the_vllm_service(manifests):
    vllm = yaml.safe_load((REPO / "manifests" / "vllm" / "service.yaml").read_text())
    [port] = vllm["spec"]["ports"]
    url = manifests["ConfigMap"]["data"]["VLLM_SERVER_URL"]
    assert url == f"http://{vllm['metadata']['name']}:{port['port']}/v1"
