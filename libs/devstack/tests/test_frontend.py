"""The front-end build: npm ci + build from the lock file, skipped while the lock file is unchanged."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from mailstify_devstack import frontend
from mailstify_devstack.frontend import FrontendLayout


def layout_in(tmp_path: Path) -> FrontendLayout:
    source = tmp_path / "frontend"
    source.mkdir()
    for name in ("package.json", "package-lock.json", "build.mjs"):
        shutil.copy(frontend.FRONTEND / name, source / name)
    return FrontendLayout(source=source, output=tmp_path / "static" / "vendor")


class RecordingNpm:
    def __init__(self, layout: FrontendLayout):
        self.calls: list[list[str]] = []
        self._layout = layout

    def __call__(self, args: Sequence[str], cwd: Path) -> None:
        assert cwd == self._layout.source
        self.calls.append(list(args))
        if args[:2] == ["run", "build"]:  # what build.mjs does: a fresh vendor folder
            shutil.rmtree(self._layout.output, ignore_errors=True)
            self._layout.output.mkdir(parents=True)


def test_builds_with_npm_ci_then_skips_until_the_lock_file_changes(tmp_path: Path) -> None:
    layout = layout_in(tmp_path)
    npm = RecordingNpm(layout)

    assert frontend.ensure_built(layout, npm) is True
    assert [call[:2] for call in npm.calls] == [["ci", "--no-audit"], ["run", "build"]]
    assert npm.calls[1][-1] == str(layout.output)
    assert frontend.is_current(layout)

    assert frontend.ensure_built(layout, npm) is False
    assert len(npm.calls) == 2

    layout.lock_file.write_text(layout.lock_file.read_text() + "\n")
    assert not frontend.is_current(layout)
    assert frontend.ensure_built(layout, npm) is True
    assert len(npm.calls) == 4


def test_the_lock_file_pins_every_package_the_build_copies() -> None:
    lock = (frontend.FRONTEND / "package-lock.json").read_text()
    build = (frontend.FRONTEND / "build.mjs").read_text()
    for package in ("htmx.org", "htmx-ext-sse", "trix", "@picocss/pico"):
        assert f'"node_modules/{package}"' in lock and f'"{package}/' in build
    assert '"node_modules/axe-core"' in lock  # the browser tests' accessibility check
