"""`mailstify`: run the whole platform locally.

    mailstify up [--dir .mailstify] [--gateway-port 8000] ... [--ready-timeout 60]
    mailstify inbox [--smtp-port 1025] [--http-port 8025] [--dir .mailstify/inbox]

`up` runs NATS, PostgreSQL, the dev inbox and the five services under honcho's process manager: one
log stream, and on Ctrl-C/SIGTERM (or when any process exits) every process is stopped
(docs/decisions/0002-process-manager.md).

With `MAILSTIFY_SMTP_HOST` set in its environment, `up` leaves the MAILSTIFY_SMTP_* variables to the
services as they are, so mail goes through that relay; unset, mail goes to the dev inbox.
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import fields
from pathlib import Path

from honcho.manager import SIGNALS, Manager

from . import frontend, inbox, postgres
from .net import LOOPBACK, is_listening
from .services import Ports, SmtpRelay, StackLayout, wait_until_ready


class ReadinessWatcher:
    """Waits, on its own thread, until every service is ready, then says so. If that takes too long
    it says what is not ready and stops the stack."""

    def __init__(self, layout: StackLayout, manager: Manager, timeout: float):
        self._layout = layout
        self._manager = manager
        self._timeout = timeout
        self._stopping = threading.Event()
        self.ready = False
        self.timed_out = False

    def start(self) -> None:
        threading.Thread(target=self._watch, name="readiness", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()

    def _watch(self) -> None:
        urls = self._layout.service_urls() | {"inbox": self._layout.inbox_url}
        problems = wait_until_ready(urls, self._timeout, give_up=self._stopping.is_set)
        if self._stopping.is_set():
            return
        if problems:
            self.timed_out = True
            details = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
            _announce(
                f"Mailstify did not become ready within {self._timeout:.0f} s ({details}). See the log above. Stopping."
            )
            self._manager.returncode = 1
            self._manager.terminate()
            return
        self.ready = True
        _announce(f"Mailstify is up: open {self._layout.gateway_url}  ({_where_mail_goes(self._layout)})")


def _where_mail_goes(layout: StackLayout) -> str:
    if layout.smtp_relay is None:
        return f"dev inbox: {layout.inbox_url}"
    return f"mail goes through the SMTP relay {layout.smtp_relay.address}, not the dev inbox"


class _Manager(Manager):
    """honcho's Manager, starting the readiness watcher only once it has forked its workers, so no
    thread of ours is running while it forks."""

    def __init__(self) -> None:
        super().__init__()
        self.watcher: ReadinessWatcher | None = None

    def _start(self) -> None:  # honcho's hook between installing signal handlers and its event loop
        super()._start()
        if self.watcher is not None:
            self.watcher.start()


def _announce(line: str) -> None:
    # One write, so it cannot interleave with honcho's lines from the main thread.
    bold = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
    sys.stdout.write(f"\n{bold[0]}{line}{bold[1]}\n\n")
    sys.stdout.flush()


def _ports_in_use(ports: Ports) -> list[str]:
    return [f"{name} {port} (--{name}-port)" for name, port in ports.named().items() if is_listening(LOOPBACK, port)]


def up(layout: StackLayout, ready_timeout: float) -> int:
    busy = _ports_in_use(layout.ports)
    if busy:
        print(f"mailstify: port(s) already in use: {', '.join(busy)}; free them or pick others.", file=sys.stderr)
        return 1
    if layout.smtp_relay is not None:
        print(
            f"mailstify: mail goes through the SMTP relay {layout.smtp_relay.address} (MAILSTIFY_SMTP_HOST);"
            " the dev inbox receives none",
            flush=True,
        )
    layout.directory.mkdir(parents=True, exist_ok=True)
    if frontend.ensure_built():
        print("mailstify: built the web app's front end (npm ci, from its lock file)", flush=True)
    if postgres.init_cluster(layout.postgres_dir):
        print(f"mailstify: created a PostgreSQL cluster in {layout.postgres_dir}", flush=True)

    manager = _Manager()
    manager.watcher = watcher = ReadinessWatcher(layout, manager, ready_timeout)
    for spec in layout.processes(layout.secrets()):
        manager.add_process(spec.name, spec.shell_command(), env=spec.full_env())
    try:
        manager.loop()
    finally:
        watcher.stop()

    if watcher.timed_out:
        return 1
    if manager.returncode in {signal["rc"] for signal in SIGNALS.values()}:  # Ctrl-C or SIGTERM
        return manager.returncode
    print("mailstify: stopped because a process exited; see its log above.", file=sys.stderr)
    return manager.returncode or 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailstify", description="Run the Mailstify platform locally.")
    commands = parser.add_subparsers(dest="command", required=True)

    up_command = commands.add_parser("up", help="start the whole platform (the default)")
    up_command.add_argument("--dir", type=Path, default=Path(".mailstify"), help="where the data lives")
    for port in fields(Ports):
        description = f"{port.metadata['help']} (default {port.default})"
        up_command.add_argument(
            f"--{port.name}-port", dest=port.name, type=int, default=port.default, metavar="PORT", help=description
        )
    up_command.add_argument("--ready-timeout", type=float, default=60.0, help="seconds (default 60)")

    inbox_command = commands.add_parser("inbox", help="run only the development SMTP inbox")
    inbox_command.add_argument("--smtp-port", type=int, default=Ports.smtp)
    inbox_command.add_argument("--http-port", type=int, default=Ports.inbox)
    inbox_command.add_argument("--dir", type=Path, default=Path(".mailstify/inbox"))
    return parser


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(arguments or ["up"])
    if args.command == "inbox":
        inbox.main(["--smtp-port", str(args.smtp_port), "--http-port", str(args.http_port), "--dir", str(args.dir)])
        return
    ports = Ports(**{port.name: getattr(args, port.name) for port in fields(Ports)})
    sys.exit(up(StackLayout(args.dir.resolve(), ports, SmtpRelay.from_environment()), args.ready_timeout))


if __name__ == "__main__":
    main()
