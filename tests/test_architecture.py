"""The layering rule (docs/architecture.md) as import contracts (pyproject.toml, [tool.importlinter]),
run here so the suite fails the moment a module crosses a layer or one service imports another."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def run_lint_imports(config: Path, cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = None
    if extra_path is not None:
        import os

        env = {**os.environ, "PYTHONPATH": f"{extra_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_service_keeps_the_layering_rule() -> None:
    result = run_lint_imports(ROOT / "pyproject.toml", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _plant(package: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for directory in [package, *(p for p in package.rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()


def test_the_contracts_catch_a_service_layer_importing_an_adapter_and_a_service_importing_another(
    tmp_path: Path,
) -> None:
    # The mailer's own contracts, applied to a planted copy with the violations the rule forbids.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = [c for c in config["contracts"] if c["name"].startswith("mailer:")]
    assert len(contracts) == 3
    _plant(
        tmp_path / "mailer",
        {
            "adapters/ledger.py": "import sqlalchemy\n",
            "service_layer/handlers.py": "from ..adapters import ledger\n",
            "domain/model.py": "import httpx\n",
            "entrypoints/consumers.py": "from ..adapters.ledger import sqlalchemy\n",
            "config.py": "",
            "bootstrap.py": "",
        },
    )
    _plant(tmp_path / "campaign", {"domain/model.py": "from mailer.domain import model\n"})

    def toml_list(values: list[str]) -> str:
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"

    lines = [
        "[tool.importlinter]",
        'root_packages = ["mailer", "campaign", "mailstify_servicekit", "mailstify_messaging"]',
        "include_external_packages = true",
        "[[tool.importlinter.contracts]]",
        'name = "independence"',
        'type = "independence"',
        'modules = ["mailer", "campaign"]',
    ]
    for contract in contracts:
        lines += ["[[tool.importlinter.contracts]]", f'name = "{contract["name"]}"', f'type = "{contract["type"]}"']
        lines += [f"source_modules = {toml_list(contract['source_modules'])}"]
        lines += [f"forbidden_modules = {toml_list(contract['forbidden_modules'])}"]
    planted_config = tmp_path / "contracts.toml"
    planted_config.write_text("\n".join(lines) + "\n")

    result = run_lint_imports(planted_config, tmp_path, extra_path=tmp_path)

    assert result.returncode != 0
    report = result.stdout
    assert "mailer.service_layer is not allowed to import mailer.adapters" in report
    assert "mailer.domain is not allowed to import httpx" in report
    assert "mailer.entrypoints is not allowed to import mailer.adapters" in report
    assert "independence BROKEN" in report
