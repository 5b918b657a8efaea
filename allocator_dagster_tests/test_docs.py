"""The repository's copy of the model contract is the shared one, word for word."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "MODEL.md"


@pytest.mark.skipif(
    not SHARED.exists(), reason="the shared design folder is not next to this clone"
)
def test_model_contract_copy_is_current() -> None:
    assert (ROOT / "docs" / "MODEL.md").read_text() == SHARED.read_text(), (
        "docs/MODEL.md differs from ../shared/MODEL.md: copy the contract again"
    )


def test_readme_commands_are_the_ci_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    ci = next(line for line in lines if "pytest" in line and not line.startswith("#"))
    assert ci in readme, "the README's test command and .ci/run must be the same command"


def test_architecture_table_names_real_modules() -> None:
    """docs/architecture.md is the newcomer's map: every module its table names must exist."""
    rows = [
        line
        for line in (ROOT / "docs" / "architecture.md").read_text().splitlines()
        if line.startswith("|")
    ]
    paths = [p for row in rows for p in re.findall(r"`([\w/.]+)`", row) if p.endswith((".py", "/"))]
    assert len(paths) > 40
    missing = [p for p in paths if not (ROOT / "allocator_dagster" / p).exists()]
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
