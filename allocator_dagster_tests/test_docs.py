"""The repository's copy of the model contract is the shared one, word for word."""

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
