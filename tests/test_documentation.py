"""The documentation: a site that builds strictly with its generated pages, a README that is an
entrance, and user-facing text free of issue numbers, run dates and commits."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from crm_modes.cli import app
from crm_modes.cli.config_reference import markdown
from tests.conftest import REPO

#: What user-facing text never says: an issue, a session's stop, a run's date or hour, a commit.
FORBIDDEN = {
    "an issue number": re.compile(r"\bissues?\s*#?\d+|#\d{1,4}\b", re.I),
    "a session's stop": re.compile(r"\bstop \d+\b|\bthis (session|round|stop)\b|\blast stop\b", re.I),
    "a run date": re.compile(r"\b20\d\d-\d\d-\d\d\b|\b\d\d:\d\d\b"),
    "an hour of the host": re.compile(r"\b(fast|slow|fastest|slowest) hour\b", re.I),
    "a commit": re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b"),
    "a machine of ours": re.compile(r"\bthese machines\b|\bthis project's \d-core\b", re.I),
}


def user_facing_text() -> list[Path]:
    """Hand-written pages, the README, and the configuration files (comments included)."""
    return [
        REPO / "README.md",
        REPO / "mkdocs.yml",
        *sorted((REPO / "docs").rglob("*.md")),
        *sorted((REPO / "configs").rglob("*.yaml")),
    ]


@pytest.mark.parametrize("path", user_facing_text(), ids=lambda path: str(path.relative_to(REPO)))
def test_user_facing_text_names_no_issue_run_date_or_commit(path):
    found = [
        f"{what}: {match.group(0)!r} in line {text[: match.start()].count(chr(10)) + 1}"
        for text in [path.read_text()]
        for what, pattern in FORBIDDEN.items()
        for match in pattern.finditer(text)
    ]
    assert found == []


def test_the_forbidden_patterns_catch_what_they_name():
    samples = {
        "an issue number": "as issue 12 asked",
        "a session's stop": "measured in this session",
        "a run date": "re-run on 2026-12-04 at 16:37",
        "an hour of the host": "in the fastest hour recorded",
        "a commit": "since 14f0ce9",
        "a machine of ours": "on these machines",
    }
    for what, sample in samples.items():
        assert FORBIDDEN[what].search(sample), what
    assert not FORBIDDEN["a commit"].search("decision 0001 and the word facade")


def test_the_readme_is_an_entrance_whose_links_resolve():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "make demo" in readme
    assert "make test" in readme
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert links
    missing = [link for link in links if not link.startswith("http") and not (REPO / link).exists()]
    assert missing == []


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built as `make docs` builds it: strictly, so a broken link or anchor fails."""
    folder = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [str(Path(sys.executable).with_name("mkdocs")), "build", "--strict", "--site-dir", str(folder)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return folder


def test_the_configuration_page_lists_every_key(site):
    page = (site / "reference" / "configuration" / "index.html").read_text()
    keys = re.findall(r"^\| `([^`]+)` \|", markdown(), re.M)
    assert len(keys) > 100
    missing = [
        key for key in keys if f"<code>{key.replace('<', '&lt;').replace('>', '&gt;')}</code>" not in page
    ]
    assert missing == []


def test_the_command_line_page_lists_every_command_and_option(site):
    page = (site / "reference" / "cli" / "index.html").read_text()
    root = typer.main.get_command(app)
    for name, command in root.commands.items():
        commands = command.commands.items() if hasattr(command, "commands") else [(None, command)]
        for sub, leaf in commands:
            title = " ".join(part for part in ("crm-modes", name, sub) if part)
            assert f"<code>{title}</code>" in page, title
            for option in (param for param in leaf.params if param.name != "help"):
                shown = option.opts[0] if option.param_type_name == "option" else option.opts[0].upper()
                assert f"<code>{shown}" in page, (title, shown)


def test_the_benchmarks_page_has_a_row_for_every_result_file(site):
    page = (site / "benchmarks" / "index.html").read_text()
    results = sorted((REPO / "benchmarks" / "results").glob("*.json"))
    assert results
    for path in results:
        assert f"<code>{path.name}</code>" in page, path.name


def test_the_schema_page_lists_every_column(site):
    from crm_modes.data.schema import SCHEMA

    page = (site / "reference" / "schema" / "index.html").read_text()
    assert all(f"<code>{column.name}</code>" in page for column in SCHEMA)


DECISION = re.compile(r"docs/decisions/\d{3}-[\w-]+\.md")


def estimator_blocks(text: str) -> list[list[str]]:
    """The lines of every ``estimator:`` block of a YAML text (comments included)."""
    lines, blocks = text.splitlines(), []
    for index, line in enumerate(lines):
        if line.strip() == "estimator:":
            indent = len(line) - len(line.lstrip())
            block = []
            for inner in lines[index + 1 :]:
                if inner.strip() and len(inner) - len(inner.lstrip()) <= indent:
                    break
                block.append(inner)
            blocks.append(block)
    return blocks


def test_estimator_settings_are_shown_only_where_measured():
    """Settings that fit one table underfit another: a shipped configuration gives settings only
    with the decision record that measured them, the pages show none, and each public table's
    configured model is at least as good as the best plain model on the same folds."""
    import json

    measured = json.loads((REPO / "benchmarks" / "results" / "estimators.json").read_text())["public_tables"]
    for path in sorted((REPO / "configs").glob("*.yaml")):
        for block in estimator_blocks(path.read_text()):
            if not any(line.strip().startswith("params:") for line in block):
                continue
            records = [found for line in block for found in DECISION.findall(line)]
            assert records, f"{path.name}: estimator settings without the record that measured them"
            assert all((REPO / record).is_file() for record in records), records
        if path.stem in measured:
            assert measured[path.stem]["configured_at_least_best_plain_minus_0.003"], path.stem
    for page in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        for block in re.findall(r"```ya?ml\n(.*?)```", page.read_text(), flags=re.S):
            shown = [b for b in estimator_blocks(block) if any("params:" in line for line in b)]
            assert not shown, f"{page.relative_to(REPO)} shows estimator settings: {shown}"


def test_estimator_blocks_are_read_with_their_comments():
    text = (
        "models:\n  m:\n    estimator:\n      # measured: docs/decisions/001-x.md\n"
        "      type: lightgbm\n      params: {a: 1}\n    calibration: none\n"
    )
    assert estimator_blocks(text) == [
        ["      # measured: docs/decisions/001-x.md", "      type: lightgbm", "      params: {a: 1}"]
    ]
