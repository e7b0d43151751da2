"""deploy/k8s, validated offline: both kustomizations are rendered by the locked `kubectl kustomize`
and every object is checked against the Kubernetes 1.37 schemas bundled in `kubernetes-validate`
(strict: unknown fields fail). KEDA's ScaledObject has no bundled schema, so its fields are checked
here one by one, against what KEDA's nats-jetstream scaler reads and what the mailers really consume.
Then the rules of issue 11: probes, bounds, disruption budgets, spread, grace periods above the
drain time, one migration run per release, only the gateway reachable, R1 in the base, R3 in
production."""

from __future__ import annotations

import collections
import copy
import os
import subprocess
import sys

import kubernetes_validate
import pytest

from mailstify_contracts.topology import MAILER_DELIVERIES
from mailstify_servicekit.settings import ServiceSettings

from mailer.config import Settings as MailerSettings

from .manifests import BASE, K8S, OVERLAYS, SERVICES, find, kustomize, load, load_all_text, of_kind, rendered

KUBERNETES_VERSION = "1.37"
# Custom resources: their schemas are not bundled; checked field by field below.
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject")}
OVERLAY_NAMES = sorted(OVERLAYS)


def pod_spec(objects, name: str) -> dict:
    return find(objects, "Deployment", name)["spec"]["template"]["spec"]


def container(objects, name: str) -> dict:
    (only,) = pod_spec(objects, name)["containers"]
    return only


# --- rendering and schemas -----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_rendered_object_matches_the_kubernetes_schemas(overlay):
    objects = rendered(overlay)
    kinds = collections.Counter(o["kind"] for o in objects)
    assert kinds == {
        "Namespace": 1, "ConfigMap": 1, "Deployment": 5, "Service": 5, "PodDisruptionBudget": 5, "Job": 1,
        "ScaledObject": 1, "NetworkPolicy": 4, **({"Secret": 1} if overlay == "base" else {}),
    }  # fmt: skip
    unchecked = []
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            unchecked.append(obj["kind"])
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert unchecked == ["ScaledObject"]


def test_strict_validation_rejects_a_misspelled_field():
    # Guards the test above: a typo in a Deployment is caught, not silently ignored.
    deployment = copy.deepcopy(find(rendered("base"), "Deployment", "gateway"))
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError, match="replica"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_a_broken_kustomization_fails_to_render(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    assert kustomize(tmp_path).returncode != 0


def test_the_base_lists_every_manifest_beside_it():
    kustomization = load(BASE / "kustomization.yaml")
    assert set(kustomization["resources"]) == {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert kustomization["namespace"] == "mailstify"
    assert {image["name"] for image in kustomization["images"]} == {f"mailstify-{s}" for s in SERVICES}


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_object_lives_in_the_mailstify_namespace(overlay):
    for obj in rendered(overlay):
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "mailstify", obj["metadata"]["name"]


# --- the Deployments -----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_probed_bounded_unprivileged_and_configured(overlay, name):
    objects = rendered(overlay)
    deployment = find(objects, "Deployment", name)
    pod = pod_spec(objects, name)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    main = container(objects, name)
    assert main["image"].endswith(f"/mailstify-{name}:0.1.0")
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["resources"]["requests"]["cpu"] and main["resources"]["requests"]["memory"]
    assert main["resources"]["limits"]["memory"]
    assert main["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    env = {e["name"]: e for e in main["env"]}
    assert env["MAILSTIFY_DATABASE_URL"]["value"].endswith(f"/mailstify_{name}")
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "mailstify-pg-app"
    assert [ref for source in main["envFrom"] for ref in source.values()] == [
        {"name": "mailstify-config"},
        {"name": "mailstify-secrets"},
    ]
    service = find(objects, "Service", name)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_a_disruption_budget_over_its_own_pods(overlay, name):
    objects = rendered(overlay)
    budget = find(objects, "PodDisruptionBudget", name)
    selector = find(objects, "Deployment", name)["spec"]["selector"]
    assert budget["spec"]["selector"] == selector
    replicas = find(objects, "Deployment", name)["spec"].get("replicas")
    if "minAvailable" in budget["spec"]:
        # Otherwise a node drain could never evict the last pod.
        assert replicas is not None and budget["spec"]["minAvailable"] < replicas
    else:
        assert budget["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_termination_grace_outlasts_each_services_drain(overlay):
    objects = rendered(overlay)
    mailer_drain = MailerSettings(database_url="postgresql+psycopg://x@h/d").shutdown_grace_seconds
    # The process gets the drain plus uvicorn's shutdown and the outbox flush before SIGKILL.
    assert pod_spec(objects, "mailer")["terminationGracePeriodSeconds"] > mailer_drain + 30
    default_drain = ServiceSettings.model_fields["shutdown_grace_seconds"].default
    for name in SERVICES:
        assert pod_spec(objects, name)["terminationGracePeriodSeconds"] > default_drain + 10, name


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_mailers_spread_over_nodes_and_zones(overlay):
    constraints = pod_spec(rendered(overlay), "mailer")["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for constraint in constraints:
        assert constraint["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "mailer"}
        assert constraint["maxSkew"] == 1


# --- autoscaling ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("overlay", "floor", "ceiling"), [("base", 1, 5), ("production", 2, 20)])
def test_mailers_autoscale_on_the_lag_of_their_shared_durable_consumer(overlay, floor, ceiling):
    objects = rendered(overlay)
    assert "replicas" not in find(objects, "Deployment", "mailer")["spec"], "the ScaledObject owns the count"
    scaled = find(objects, "ScaledObject", "mailer")
    spec = scaled["spec"]
    assert set(spec) <= {
        "scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod", "advanced",
        "triggers",
    }  # fmt: skip
    assert spec["scaleTargetRef"] == {"name": "mailer"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (floor, ceiling)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "nats-jetstream"
    metadata = trigger["metadata"]
    assert set(metadata) == {"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold", "useHttps"}
    # Must name the stream and durable the mailers actually consume (libs/contracts topology).
    assert (metadata["stream"], metadata["consumer"]) == (MAILER_DELIVERIES.stream, MAILER_DELIVERIES.durable)
    assert int(metadata["lagThreshold"]) > 0
    assert all(isinstance(value, str) for value in metadata.values()), "KEDA metadata values are strings"


# --- JetStream replication: R1 in the base, R3 in production, matching the NATS cluster ------------


def test_stream_replication_is_one_in_the_base_and_three_in_production():
    replicas = {o: find(rendered(o), "ConfigMap", "mailstify-config")["data"]["MAILSTIFY_JETSTREAM_REPLICAS"] for o in OVERLAY_NAMES}
    assert replicas == {"base": "1", "production": "3"}
    nats_cluster = load(K8S / "nats-values.yaml")["config"]["cluster"]
    assert nats_cluster["enabled"] is True and nats_cluster["replicas"] >= int(replicas["production"])


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


# --- configuration and secrets -------------------------------------------------------------------


def test_shared_environment_comes_from_a_configmap_and_secrets_from_a_secret():
    config = find(rendered("production"), "ConfigMap", "mailstify-config")["data"]
    assert config["MAILSTIFY_NATS_URL"].startswith("nats://")
    assert (config["MAILSTIFY_AUDIENCE_URL"], config["MAILSTIFY_CAMPAIGN_URL"]) == ("http://audience", "http://campaign")
    assert config["MAILSTIFY_DATABASE_AUTOCREATE"] == "false"
    secret = find(rendered("base"), "Secret", "mailstify-secrets")["stringData"]
    assert set(secret) == {"MAILSTIFY_INTERNAL_TOKEN", "MAILSTIFY_SECRET_KEY"}
    assert not {"MAILSTIFY_INTERNAL_TOKEN", "MAILSTIFY_SECRET_KEY", "PGPASSWORD"} & set(config)


def test_production_never_applies_the_placeholder_secret_and_would_refuse_it(monkeypatch):
    # The operator creates the real Secret; an apply of the overlay must not overwrite it.
    assert of_kind(rendered("production"), "Secret") == []
    # And should the placeholders reach production anyway, its https address makes every service refuse them.
    config = find(rendered("production"), "ConfigMap", "mailstify-config")["data"]
    assert config["MAILSTIFY_PUBLIC_URL"].startswith("https://")
    placeholders = find(rendered("base"), "Secret", "mailstify-secrets")["stringData"]
    for name, value in {**config, **placeholders}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="MAILSTIFY_INTERNAL_TOKEN and MAILSTIFY_SECRET_KEY"):
        ServiceSettings(database_url="postgresql+psycopg://x@h/d")


def test_the_base_runs_with_its_placeholders_on_plain_http(monkeypatch):
    objects = rendered("base")
    values = {**find(objects, "ConfigMap", "mailstify-config")["data"], **find(objects, "Secret", "mailstify-secrets")["stringData"]}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    assert ServiceSettings(database_url="postgresql+psycopg://x@h/d").public_url.startswith("http://")


# --- migrations: a Job, once per release ---------------------------------------------------------


def migration_containers(overlay: str) -> dict[str, dict]:
    job = find(rendered(overlay), "Job", "migrate")
    return {c["name"]: c for c in job["spec"]["template"]["spec"]["containers"]}


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_migrations_run_once_as_a_job_with_each_services_own_image(overlay):
    containers = migration_containers(overlay)
    assert sorted(containers) == sorted(SERVICES)
    for name, migrate in containers.items():
        assert migrate["image"] == container(rendered(overlay), name)["image"]
        env = {e["name"]: e for e in migrate["env"]}
        assert env["MAILSTIFY_DATABASE_URL"] == {"name": "MAILSTIFY_DATABASE_URL", "value": env["MAILSTIFY_DATABASE_URL"]["value"]}
        assert env["MAILSTIFY_DATABASE_URL"]["value"].endswith(f"/mailstify_{name}")
        assert migrate["securityContext"]["readOnlyRootFilesystem"] is True
    assert find(rendered(overlay), "Job", "migrate")["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


@pytest.mark.integration
@pytest.mark.parametrize("name", SERVICES)
def test_the_jobs_command_migrates_a_database_to_head(name, fresh_database):
    # The very command the Job runs, against a real PostgreSQL: an empty database gets the schema.
    command = migration_containers("production")[name]["command"]
    assert command[:2] == ["python", "-c"]
    env = {**os.environ, "MAILSTIFY_DATABASE_URL": fresh_database}
    done = subprocess.run([sys.executable, "-c", command[2]], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    check = (
        "import os, sqlalchemy as sa; e = sa.create_engine(os.environ['MAILSTIFY_DATABASE_URL']);"
        " print(e.connect().execute(sa.text('SELECT version_num FROM alembic_version')).scalar())"
    )
    version = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip(), version.stderr[-2000:]


# --- network policies: only the gateway is reachable from outside -----------------------------------


def selected(policy: dict) -> str | None:
    return policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_only_the_gateway_accepts_traffic_from_outside(overlay):
    policies = of_kind(rendered(overlay), "NetworkPolicy")
    (deny,) = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert deny["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in deny["spec"]
    allows = {selected(p): p["spec"]["ingress"] for p in policies if p is not deny}
    open_to_anyone = [name for name, rules in allows.items() if any("from" not in rule for rule in rules)]
    assert open_to_anyone == ["gateway"]
    callers = {
        name: sorted(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for rule in rules for peer in rule["from"])
        for name, rules in allows.items()
        if name != "gateway"
    }
    # Who calls whom over HTTP (MAILSTIFY_AUDIENCE_URL / _CAMPAIGN_URL); dispatcher and mailer serve
    # only probes, which come from the kubelet and are not filtered.
    assert callers == {"audience": ["campaign", "dispatcher", "gateway"], "campaign": ["gateway"]}


def test_mailer_service_exposes_no_traffic_port():
    service = find(rendered("production"), "Service", "mailer")
    assert service["spec"]["clusterIP"] == "None"
    assert [port["port"] for port in service["spec"]["ports"]] == [8000]


def test_postgres_example_creates_one_database_per_service():
    documents = load_all_text((K8S / "postgres" / "cloudnativepg.yaml").read_text())
    databases = of_kind(documents, "Database")
    assert sorted(d["spec"]["name"] for d in databases) == sorted(f"mailstify_{s}" for s in SERVICES)
