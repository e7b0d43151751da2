"""docker-compose.yml and deploy/Dockerfile, validated without a container engine (CI has none):
the Compose file against the Compose specification, and both against the facts they depend on
(service names, the workspace's packages, the secrets the stack must not default). The Kubernetes
files are in test_kubernetes.py, the environment each service reads in test_environment.py."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .manifests import COMPOSE_FILE, REPO, SERVICES, compose_services, load


def validate_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- docker-compose.yml --------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification():
    result = validate_compose(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout


def test_compose_validation_rejects_a_misspelled_key(tmp_path):
    # Guards the test above: the validator really checks services, it does not just parse YAML.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("restart: unless-stopped", "restarts: unless-stopped", 1))
    result = validate_compose(broken)
    assert result.returncode != 0
    assert "restarts" in result.stdout


def test_compose_defines_the_services_and_their_infrastructure():
    services = compose_services()
    assert set(SERVICES) | {"nats", "postgres", "mailpit", "jaeger"} <= set(services)
    assert services["mailer"]["deploy"]["replicas"] == 3


def test_every_dependency_waits_for_health():
    for name, service in compose_services().items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            assert "healthcheck" in compose_services()[dependency], dependency


def test_compose_has_no_default_secrets():
    # `${VAR:?message}`: compose refuses to start while VAR is unset or empty, and says which.
    text = COMPOSE_FILE.read_text()
    for variable in ("MAILSTIFY_SECRET_KEY", "MAILSTIFY_INTERNAL_TOKEN", "POSTGRES_PASSWORD"):
        uses = re.findall(r"\$\{" + variable + r"([^}]*)\}", text)
        assert uses and all(use.startswith(":?") for use in uses), f"{variable}: {uses}"
    assert "dev-secret-key" not in text and "dev-internal-token" not in text
    assert "postgres:postgres@" not in text


def test_env_example_names_every_required_variable_and_sets_no_secret():
    example = dict(
        line.split("=", 1)
        for line in (REPO / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_FILE.read_text()))
    assert required == {"MAILSTIFY_SECRET_KEY", "MAILSTIFY_INTERNAL_TOKEN", "POSTGRES_PASSWORD"}
    assert required <= set(example)
    assert all(example[name] == "" for name in required), "the example must not carry usable secrets"
    optional = set(re.findall(r"\$\{(\w+):-", COMPOSE_FILE.read_text()))
    assert optional <= set(example), optional - set(example)


def test_nats_fsyncs_every_write_and_postgres_gets_one_database_per_service():
    compose = load(COMPOSE_FILE)
    nats = compose["services"]["nats"]
    (config,) = nats["configs"]
    assert nats["command"] == ["-c", config["target"]]
    nats_conf = compose["configs"][config["source"]]["content"]
    assert re.search(r"sync_interval:\s*always", nats_conf) and "store_dir: /data" in nats_conf
    assert any(volume.endswith(":/data") for volume in nats["volumes"])
    (init,) = compose["services"]["postgres"]["configs"]
    assert init["target"].startswith("/docker-entrypoint-initdb.d/")
    created = re.findall(r"CREATE DATABASE (\w+);", compose["configs"][init["source"]]["content"])
    assert sorted(created) == sorted(f"mailstify_{name}" for name in SERVICES)


def test_each_compose_service_is_built_from_the_one_dockerfile_for_itself():
    services = compose_services()
    for name in SERVICES:
        build = services[name]["build"]
        assert build["dockerfile"] == "deploy/Dockerfile"
        assert build["args"]["SERVICE"] == name
        env = services[name]["environment"]
        assert env["MAILSTIFY_DATABASE_URL"].endswith(f"@postgres:5432/mailstify_{name}")
        assert env["MAILSTIFY_NATS_URL"] == "nats://nats:4222"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://jaeger:4318")
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_only_the_gateway_and_the_read_only_uis_are_published_and_only_on_loopback():
    services = compose_services()
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert published == {
        "gateway": ["127.0.0.1:8000:8000"],
        "mailpit": ["127.0.0.1:8025:8025"],
        "grafana": ["127.0.0.1:3000:3000"],
    }


def test_mailer_delivers_to_mailpit_without_tls():
    services = compose_services()
    env = services["mailer"]["environment"]
    assert (env["MAILSTIFY_SMTP_HOST"], str(env["MAILSTIFY_SMTP_PORT"]), env["MAILSTIFY_SMTP_TLS"]) == (
        "mailpit",
        "1025",
        "none",
    )


# --- deploy/Dockerfile ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_the_dockerfile_conventions_hold_for_every_service(name):
    # The Dockerfile installs package `mailstify-${SERVICE}` and runs `${SERVICE}.entrypoints.app:create_app`.
    project = tomllib.loads((REPO / "services" / name / "pyproject.toml").read_text())["project"]
    assert project["name"] == f"mailstify-{name}"
    app = (REPO / "services" / name / "src" / name / "entrypoints" / "app.py").read_text()
    assert "def create_app(" in app


def test_dockerfile_installs_the_lock_for_one_service_and_runs_unprivileged():
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    assert 'uv sync --frozen --no-dev --no-editable --package "mailstify-${SERVICE}"' in dockerfile
    assert "USER 10001:10001" in dockerfile
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", dockerfile, re.MULTILINE)
    # Multi-stage: the runtime image gets the built venv, not the build tools or the sources.
    assert re.findall(r"^FROM \S+ AS (\w+)", dockerfile, re.MULTILINE) == ["frontend", "build", "runtime"]
    assert "COPY --from=build /app/.venv /app/.venv" in dockerfile
    # The gateway's browser packages come from its lock file and end up inside its wheel.
    assert "npm ci" in dockerfile and "COPY --from=frontend /vendor" in dockerfile
    gateway = tomllib.loads((REPO / "services" / "gateway" / "pyproject.toml").read_text())
    assert gateway["tool"]["hatch"]["build"]["targets"]["wheel"]["artifacts"] == [
        "src/gateway/entrypoints/web/static/vendor/*"
    ]


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".mailstify", ".git"} <= ignored
