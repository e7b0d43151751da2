"""How one process of the stack is described (`ProcessSpec`) and how the test fixtures run one
(`RunningProcess`). `mailstify up` hands the same specs to honcho instead."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    # Only what this process needs on top of the inherited environment.
    env: Mapping[str, str] = field(default_factory=dict)
    # Inherited variables whose name starts with one of these are not passed on (`env` still is):
    # e.g. a developer's MAILSTIFY_SMTP_* must not reach services that are to use a given inbox.
    unset_prefixes: tuple[str, ...] = ()

    def full_env(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """`environ` (default os.environ) less `unset_prefixes`, plus `env`."""
        inherited = os.environ if environ is None else environ
        kept = {k: v for k, v in inherited.items() if not (self.unset_prefixes and k.startswith(self.unset_prefixes))}
        # Unbuffered so Python processes' logs reach the log stream/file as they happen.
        return {**kept, "PYTHONUNBUFFERED": "1", **self.env}

    def shell_command(self) -> str:
        """The command line honcho runs through `sh -c`; `exec` makes the shell become the process, so
        honcho's signals reach it and not an intermediate shell."""
        return "exec " + shlex.join(self.argv)


class RunningProcess:
    """A spec started in its own process group with its output in a log file; stopped by PID (also
    when used as a context manager and the block exits)."""

    def __init__(self, spec: ProcessSpec, popen: subprocess.Popen[bytes], log_path: Path):
        self.spec = spec
        self.log_path = log_path
        self._popen = popen

    @classmethod
    def start(cls, spec: ProcessSpec, log_path: Path) -> RunningProcess:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                list(spec.argv),
                env=spec.full_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own group: stopping signals every process it spawned too, and a Ctrl-C meant for
                # pytest does not hit it before the fixture's orderly teardown.
                start_new_session=True,
            )
        return cls(spec, popen, log_path)

    def __enter__(self) -> RunningProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self._popen.pid

    def alive(self) -> bool:
        return self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def terminate(self) -> None:
        """Ask the process group to stop (SIGTERM) without waiting; `stop` then waits."""
        if self.alive():
            self._signal_group(signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited within `timeout`."""
        if not self.alive():
            return
        self._signal_group(signal.SIGTERM)
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self._popen.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self._popen.pid, signum)


def stop_all(processes: Iterable[RunningProcess], timeout: float = 10.0) -> None:
    """Stop several processes at once rather than one after another."""
    processes = list(processes)
    for process in processes:
        process.terminate()
    for process in processes:
        process.stop(timeout)
