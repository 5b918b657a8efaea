"""The repository's copy of the model contract is the shared one, word for word, then this
project's extensions in a section of their own."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "MODEL.md"
EXTENSIONS = "## Extensions adopted by this project"


@pytest.mark.skipif(
    not SHARED.exists(), reason="the shared design folder is not next to this clone"
)
def test_model_contract_copy_is_current() -> None:
    copy = (ROOT / "docs" / "MODEL.md").read_text()
    shared = SHARED.read_text()
    assert copy.startswith(shared), (
        "docs/MODEL.md does not start with ../shared/MODEL.md word for word: copy the contract "
        "again and keep this project's additions in its extensions section"
    )
    assert copy[len(shared) :].lstrip("\n").startswith(EXTENSIONS), (
        f"docs/MODEL.md adds to the contract outside its {EXTENSIONS!r} section"
    )


def test_every_extension_parameter_is_a_parameter() -> None:
    """Each rule the extensions section defines is a field of the one typed parameter model."""
    from allocator_dagster.parameters import AllocationParameters

    section = (ROOT / "docs" / "MODEL.md").read_text().split(EXTENSIONS, 1)[1]
    names = re.findall(r"^- \*\*`(\w+)`\*\*", section, flags=re.M)
    assert names, "the extensions section defines no parameter"
    missing = [n for n in names if n not in AllocationParameters.model_fields]
    assert not missing, f"docs/MODEL.md defines parameters the model does not have: {missing}"


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
