"""The dependency ranges: the lower bounds `make test-lower` installs are pyproject.toml's own."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {
    "pytest",
    "pytest-xdist",
    "hypothesis",
    "schemathesis",
    "ruff",
    "import-linter",
    "mkdocs",
    "mkdocs-material",
}


def _lower_bounds(requirements: list[str]) -> dict[str, str]:
    bounds = {}
    for requirement in requirements:
        requirement = requirement.split(";")[0]  # an environment marker does not change the bound
        pattern = r"([A-Za-z0-9_.-]+)(?:\[[a-z,]+\])?>=([0-9.]+)(?:,<[0-9.]+)?"  # an upper bound may follow
        match = re.fullmatch(pattern, requirement.replace(" ", ""))
        assert match, f"{requirement!r}: every dependency needs a plain lower bound"
        bounds[match[1].lower()] = match[2]
    return bounds


def test_the_lower_bound_constraints_are_pyproject_s_lower_bounds():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _lower_bounds(project["dependencies"])
    wanted |= {
        name: bound
        for extra in project["optional-dependencies"].values()
        for name, bound in _lower_bounds(extra).items()
        if name not in TOOLS
    }
    pinned = {}
    for line in (ROOT / ".ci" / "lower-bounds.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pinned[name.lower()] = version
    for name, bound in wanted.items():
        assert name in pinned, f"{name} is not pinned in .ci/lower-bounds.txt"
        assert _release(pinned[name]) == _release(bound), (name, pinned[name], bound)
    assert set(pinned) == set(wanted)


def _release(version: str) -> tuple[int, ...]:
    """``1.26`` and ``1.26.0`` are the same release."""
    parts = [int(part) for part in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)
