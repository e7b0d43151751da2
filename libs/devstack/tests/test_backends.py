"""Which test backend runs is never a surprise: local processes unless MAILSTIFY_TEST_DOCKER=1 asks for
containers, and then containers or a usage error, never a silent fallback. `./mailstify test`
installs the container backend's extra exactly when it is asked for."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# A test file for a pytest run of its own, using the plugin's cheapest fixture.
PROBE = '''
import sys


def test_probe(nats_server):
    assert nats_server.url.startswith("nats://")
    assert "mailstify_devstack.containers" not in sys.modules
    assert not any(name == "testcontainers" or name.startswith("testcontainers.") for name in sys.modules)
'''


def run_pytest(directory: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (directory / "test_probe.py").write_text(PROBE)
    (directory / "pytest.ini").write_text("[pytest]\n")  # not the repository's configuration
    inherited = {k: v for k, v in os.environ.items() if k != "MAILSTIFY_TEST_DOCKER"}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "mailstify_devstack.pytest_plugin"]
    return subprocess.run(
        [*command, str(directory)],
        cwd=directory,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_by_default_local_processes_and_no_container_code_at_all(tmp_path: Path) -> None:
    done = run_pytest(tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "mailstify test infrastructure: local processes" in done.stdout


def test_containers_asked_for_without_a_docker_engine_is_a_usage_error(tmp_path: Path) -> None:
    # This machine, like CI, has no Docker engine; an unreachable DOCKER_HOST makes sure of it anywhere.
    done = run_pytest(tmp_path, MAILSTIFY_TEST_DOCKER="1", DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")

    assert done.returncode == 4, done.stdout + done.stderr  # pytest's exit code for a usage error
    assert "MAILSTIFY_TEST_DOCKER=1 asks for the test infrastructure in containers" in done.stderr
    assert "no Docker engine is reachable" in done.stderr
    assert "unset MAILSTIFY_TEST_DOCKER to use local processes" in done.stderr
    assert "passed" not in done.stdout  # no test ran, on local processes or otherwise


def run_the_script_with_a_stub_uv(tmp_path: Path, **env: str) -> list[list[str]]:
    """`./mailstify test --version` with a `uv` first on PATH that records each command line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "uv-calls"
    stub = bin_dir / "uv"
    stub.write_text(f'#!/usr/bin/env bash\nprintf "%s\\0" "$@" >> {calls}\nprintf "\\n" >> {calls}\n')
    stub.chmod(0o755)
    inherited = {k: v for k, v in os.environ.items() if k != "MAILSTIFY_TEST_DOCKER"}
    done = subprocess.run(
        [str(REPO / "mailstify"), "test", "--version"],
        env={**inherited, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [line.strip("\0").split("\0") for line in calls.read_text().splitlines()]


def test_the_script_installs_the_locked_workspace_without_the_docker_extra_by_default(tmp_path: Path) -> None:
    sync, run = run_the_script_with_a_stub_uv(tmp_path)

    assert sync[:2] == ["sync", "--frozen"] and "docker" not in sync and "--all-extras" not in sync
    assert run == ["run", "--frozen", "pytest", "--version"]


def test_the_script_installs_the_docker_extra_when_containers_are_asked_for(tmp_path: Path) -> None:
    sync, run = run_the_script_with_a_stub_uv(tmp_path, MAILSTIFY_TEST_DOCKER="1")

    assert sync[:2] == ["sync", "--frozen"] and sync[sync.index("--extra") + 1] == "docker"
    assert run[:3] == ["run", "--frozen", "--extra"] and run[3] == "docker" and run[4:] == ["pytest", "--version"]


def test_the_lock_holds_the_docker_extra_so_a_frozen_sync_can_install_it() -> None:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    packages = {package["name"]: package for package in lock["package"]}
    root_extra = packages["mailstify"]["optional-dependencies"]["docker"]

    assert root_extra == [{"name": "mailstify-devstack", "extra": ["docker"]}]
    assert "testcontainers" in packages
    uv = shutil.which("uv") or str(REPO / ".mailstify/uv/bin/uv")
    done = subprocess.run(
        [uv, "sync", "--frozen", "--extra", "docker", "--dry-run"],
        cwd=REPO,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
