"""The import contracts of ``pyproject.toml``, checked on the package as it installs.

The top-level folders (``data/``, ``models/``, ...) install under one package, ``crm_modes``,
through the package-dir mapping of ``pyproject.toml``. import-linter finds a package's modules by
walking its folder, which that mapping is not, so the package is assembled into a folder of its
own, as it installs, and ``lint-imports`` runs on that copy.

Run as a script (``make test`` does) it checks the working tree and exits with lint-imports' code.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def assemble(target: Path, source: Path = REPO) -> Path:
    """Copy every package of ``source``'s ``pyproject.toml`` into ``target``, as it installs."""
    setuptools = tomllib.loads((source / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = setuptools["package-dir"]
    for package in sorted(folders, key=len):
        destination = target.joinpath(*package.split("."))
        shutil.copytree(
            source / folders[package],
            destination,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
    return target


#: Terminal colour codes, which some releases of import-linter print even into a pipe.
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def lint(tree: Path, config: Path = REPO / "pyproject.toml") -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package assembled in ``tree``, with ``config``'s contracts; its
    output without colour codes. (``--config`` is read by every release the test extra allows.)"""
    command = Path(sys.executable).with_name("lint-imports")
    environment = {**os.environ, "PYTHONPATH": str(tree), "NO_COLOR": "1"}
    result = subprocess.run(
        [str(command), "--no-cache", "--config", str(config)],
        cwd=tree,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    result.stdout = _COLOUR.sub("", result.stdout)
    return result


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="crm-modes-imports-") as folder:
        result = lint(assemble(Path(folder)))
    print(result.stdout, end="")
    print(result.stderr, end="", file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
