"""Is a Docker engine reachable? Asked before the container backend is imported, so the answer does
not depend on the `docker` extra being installed."""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

DEFAULT_SOCKET = "/var/run/docker.sock"


def problem(environ: Mapping[str, str] | None = None) -> str | None:
    """Why no Docker engine answers, or None when one does (its /_ping says OK)."""
    environ = os.environ if environ is None else environ
    try:
        import docker  # the docker extra: knows contexts, TLS and the rest of the client configuration
    except ImportError:
        return _ping_without_sdk(environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}")
    try:
        docker.from_env(environment=dict(environ)).ping()
    except Exception as error:  # no socket, no permission, bad configuration: all mean "not here"
        return f"{type(error).__name__}: {error}"
    return None


def _ping_without_sdk(host: str) -> str | None:
    if host.startswith("unix://"):
        transport, base = httpx.HTTPTransport(uds=host.removeprefix("unix://")), "http://docker"
    elif host.startswith("tcp://"):
        transport, base = httpx.HTTPTransport(), "http://" + host.removeprefix("tcp://")
    else:
        return f"DOCKER_HOST={host}: only unix:// and tcp:// can be checked without the docker package"
    try:
        with httpx.Client(transport=transport, timeout=3.0) as client:
            response = client.get(f"{base}/_ping")
    except httpx.HTTPError as error:
        return f"{host}: {type(error).__name__}: {error}"
    return None if response.status_code == 200 else f"{host}: /_ping answered {response.status_code}"
