"""docker-compose.yml is written for councils and never run here, so check it against caseloop itself:
every command it gives the caseloop image is a real command, and every CASELOOP_ variable a setting."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import typer.main
import yaml

from cli.main import app
from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _caseloop_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _compose()["services"].items() if s.get("build") == "."}


def _is_group(command: Any) -> bool:
    return hasattr(command, "commands")  # typer ships its own click; compare by shape


def _resolves(words: list[str]) -> bool:
    command: Any = typer.main.get_command(app)
    for word in words:
        if word.startswith("-"):
            break
        if not _is_group(command):
            return True  # the rest are arguments of a leaf command
        sub = command.commands.get(word)
        if sub is None:
            return False
        command = sub
    return not _is_group(command)


def test_the_dockerfile_runs_caseloop() -> None:
    assert 'ENTRYPOINT ["caseloop"]' in (ROOT / "Dockerfile").read_text()
    # The pages' stylesheet is compiled in a stage of its own and copied where the web serves it.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "npm ci --ignore-scripts" in dockerfile
    assert "COPY --from=assets /build/web/static ./web/static" in dockerfile


def test_the_image_holds_every_package_caseloop_installs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE))
    assert packages - copied == set(), "the Dockerfile does not copy these packages"


def test_every_caseloop_service_runs_a_real_command() -> None:
    services = _caseloop_services()
    assert {"migrate", "worker", "beat", "web"} <= services.keys()
    for name, service in services.items():
        assert _resolves(service["command"]), f"{name}: caseloop has no command {service['command']}"


def test_the_resolver_refuses_a_made_up_command() -> None:
    assert not _resolves(["db", "downgrade-everything"])
    assert not _resolves(["db"])  # a group alone is not a command


def test_every_caseloop_variable_is_a_setting() -> None:
    fields = {f"CASELOOP_{name.upper()}" for name in Settings.model_fields}
    for name, service in _caseloop_services().items():
        variables = set(service["environment"])
        assert variables, f"{name} has no environment"
        unknown = {v for v in variables if v.startswith("CASELOOP_")} - fields
        assert not unknown, f"{name}: not caseloop settings: {sorted(unknown)}"


def test_the_web_listens_beyond_its_container_with_its_secrets_from_the_environment() -> None:
    web = _caseloop_services()["web"]
    assert web["command"][:3] == ["web", "--host", "0.0.0.0"]
    env = web["environment"]
    assert env["CASELOOP_ENVIRONMENT"] == "production"  # so a missing secret key stops it
    for name in ("CASELOOP_SECRET_KEY", "CASELOOP_COOKIE_SECURE", "CASELOOP_NOTIFY_CALLBACK_TOKEN"):
        assert env[name].startswith("${"), f"{name} must come from the environment, not the file"
    assert ":?" in env["CASELOOP_SECRET_KEY"]  # compose itself refuses to start without it
    assert env["CASELOOP_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_production_redis_never_evicts() -> None:
    redis = _compose()["services"]["redis"]
    assert "noeviction" in redis["command"]


def test_worker_and_beat_use_the_broker_and_the_database() -> None:
    for name in ("worker", "beat"):
        env = _caseloop_services()[name]["environment"]
        assert env["CASELOOP_BROKER_URL"].startswith("redis://")
        assert env["CASELOOP_DATABASE_URL"].startswith("postgresql+psycopg://")
