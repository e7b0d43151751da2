"""The deployment files are validated here, since no container engine runs them in CI:
docker-compose.yml against the Compose specification, the Kubernetes manifests and NATS Helm values
for shape, and both against the facts they depend on (service names, the workspace's packages, the
JetStream stream and consumer the mailers scale on)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from mailstify_contracts.topology import MAILER_DELIVERIES

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
K8S = REPO / "deploy" / "k8s"
SERVICES = ("gateway", "audience", "campaign", "dispatcher", "mailer")

_yaml = YAML(typ="safe")


def load(path: Path) -> dict:
    return _yaml.load(path.read_text())


def load_all(path: Path) -> list[dict]:
    return [doc for doc in _yaml.load_all(path.read_text()) if doc is not None]


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
    services = load(COMPOSE_FILE)["services"]
    assert set(SERVICES) | {"nats", "postgres", "mailpit", "jaeger"} <= set(services)
    assert services["mailer"]["deploy"]["replicas"] >= 2


def test_each_compose_service_is_built_from_the_one_dockerfile_for_itself():
    services = load(COMPOSE_FILE)["services"]
    for name in SERVICES:
        build = services[name]["build"]
        assert build["dockerfile"] == "deploy/Dockerfile"
        assert build["args"]["SERVICE"] == name
        env = services[name]["environment"]
        assert env["MAILSTIFY_DATABASE_URL"].endswith(f"@postgres:5432/mailstify_{name}")
        assert env["MAILSTIFY_NATS_URL"] == "nats://nats:4222"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://jaeger:4318")
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_only_the_gateway_is_published_and_only_on_loopback():
    services = load(COMPOSE_FILE)["services"]
    assert services["gateway"]["ports"] == ["127.0.0.1:8000:8000"]
    for name in SERVICES[1:]:
        assert "ports" not in services[name], name
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_mailer_delivers_to_mailpit_without_tls():
    services = load(COMPOSE_FILE)["services"]
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
    assert "/healthz" in dockerfile


# --- deploy/k8s ----------------------------------------------------------------------------------


def k8s_manifest_files() -> list[Path]:
    helm_values_and_kustomize = {"nats-values.yaml", "kustomization.yaml"}
    return sorted(p for p in K8S.rglob("*.yaml") if p.name not in helm_values_and_kustomize)


def k8s_objects() -> list[dict]:
    return [doc for path in k8s_manifest_files() for doc in load_all(path)]


def find(kind: str, name: str) -> dict:
    matches = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def test_every_k8s_manifest_parses_and_names_its_kind():
    files = k8s_manifest_files()
    assert len(files) >= 8
    for path in files:
        docs = load_all(path)
        assert docs, f"{path} is empty"
        for doc in docs:
            assert doc.get("apiVersion"), path
            assert doc.get("kind"), path
            assert doc.get("metadata", {}).get("name"), path


def test_kustomization_lists_every_top_level_manifest():
    kustomization = load(K8S / "kustomization.yaml")
    top_level = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "nats-values.yaml"}
    assert set(kustomization["resources"]) == top_level
    assert kustomization["namespace"] == "mailstify"
    assert {image["name"] for image in kustomization["images"]} == {f"mailstify-{s}" for s in SERVICES}


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_deployment_is_probed_bounded_and_unprivileged(name):
    deployment = find("Deployment", name)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == f"mailstify-{name}"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in container["env"]}
    assert env["MAILSTIFY_DATABASE_URL"]["value"].endswith(f"/mailstify_{name}")
    assert [ref for source in container["envFrom"] for ref in source.values()] == [
        {"name": "mailstify-config"},
        {"name": "mailstify-secrets"},
    ]
    service = find("Service", name)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_shared_environment_comes_from_a_configmap_and_a_secret():
    config = find("ConfigMap", "mailstify-config")["data"]
    assert config["MAILSTIFY_NATS_URL"].startswith("nats://")
    assert config["MAILSTIFY_AUDIENCE_URL"] == "http://audience"
    assert config["MAILSTIFY_CAMPAIGN_URL"] == "http://campaign"
    secret = find("Secret", "mailstify-secrets")["stringData"]
    assert {"MAILSTIFY_INTERNAL_TOKEN", "MAILSTIFY_SECRET_KEY"} <= set(secret)
    assert not {"MAILSTIFY_INTERNAL_TOKEN", "MAILSTIFY_SECRET_KEY"} & set(config)


def test_mailers_autoscale_on_the_lag_of_their_shared_durable_consumer():
    deployment = find("Deployment", "mailer")
    assert "replicas" not in deployment["spec"], "the ScaledObject owns the mailer replica count"
    scaled = find("ScaledObject", "mailer")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "mailer"
    assert scaled["spec"]["minReplicaCount"] >= 2
    assert scaled["spec"]["maxReplicaCount"] > scaled["spec"]["minReplicaCount"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "nats-jetstream"
    # Must name the stream and durable the mailers actually consume (libs/contracts topology).
    assert trigger["metadata"]["stream"] == MAILER_DELIVERIES.stream
    assert trigger["metadata"]["consumer"] == MAILER_DELIVERIES.durable
    assert int(trigger["metadata"]["lagThreshold"]) > 0


def test_mailer_service_exposes_no_traffic_port():
    service = find("Service", "mailer")
    assert service["spec"]["clusterIP"] == "None"
    assert [port["port"] for port in service["spec"]["ports"]] == [8000]


def test_postgres_example_creates_one_database_per_service():
    databases = [o for o in k8s_objects() if o["kind"] == "Database"]
    assert sorted(d["spec"]["name"] for d in databases) == sorted(f"mailstify_{s}" for s in SERVICES)


def test_nats_values_give_a_three_node_durable_jetstream_cluster():
    values = load(K8S / "nats-values.yaml")["config"]
    assert values["cluster"] == {"enabled": True, "replicas": 3}
    jetstream = values["jetstream"]
    assert jetstream["enabled"] is True
    assert jetstream["memoryStore"]["enabled"] is False
    assert jetstream["fileStore"]["enabled"] is True
    assert jetstream["fileStore"]["pvc"]["enabled"] is True
    assert jetstream["merge"]["sync_interval"] == "always"
    assert values["monitor"]["enabled"] is True  # KEDA reads consumer lag from it
