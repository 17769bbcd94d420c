"""The README: its first lines are the two commands a newcomer needs (CI runs them), its
module map is the package, and what it states of the code is what the code has."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_batchgen.authors.review import (
    ARITHMETIC_TOLERANCE,
    FIDELITY_MIN,
    FIDELITY_PARTS,
    FIDELITY_WEIGHT,
    OVERALL_MIN,
    QUALITY_MIN,
    QUALITY_PARTS,
    QUALITY_WEIGHT,
)

ROOT = Path(__file__).parent.parent


def test_readme_opens_with_the_demo_and_test_commands() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:12]
    blocks = [line for line in head if line.startswith("python3 -m venv .venv")]
    assert len(blocks) == 2
    demo, tests = blocks
    assert "pip install ." in demo and "load-demo" in demo
    assert "pytest --batch-course=course_demo1 --batch-author=outline" in demo
    assert "&& pytest" in tests and tests.endswith("--durations=20")


def test_ci_runs_the_readme_blocks() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'bash -c "$test_command"' in ci and 'bash -c "$demo_command"' in ci


def test_the_module_map_names_every_module_and_only_those() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Module map", 1)[1].split("## Extending", 1)[0]
    block = section.split("```", 2)[1]
    named = set(re.findall(r"[\w]+\.py\b", block))
    package = ROOT / "pytest_batchgen"
    modules = {path.name for path in package.rglob("*.py") if path.name != "__init__.py"}
    assert named == modules
    packages = {path.parent.name + "/" for path in package.rglob("__init__.py")
                if path.parent != package}
    assert all(name in block for name in packages | {"demo/", "prompts/"})


def test_installing_into_another_project_names_extras_that_exist() -> None:
    # The plugin is on no package index: the README installs it from the repository
    # or a wheel, its extras (xdist) as extras, never as a package of their own.
    readme = (ROOT / "README.md").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    lines = [line for line in readme.splitlines() if line.startswith("pip install")]
    assert any("pytest-batchgen[xdist] @ git+" in line for line in lines)
    assert any(line.startswith("pip wheel") for line in readme.splitlines())
    for extras in re.findall(r"pytest-batchgen\[([\w,]+)\]", "\n".join(lines)):
        for extra in extras.split(","):
            assert f"\n{extra} = [" in pyproject, f"no [{extra}] extra in pyproject.toml"
    assert not re.search(r"pip install pytest-xdist\b", readme)


def test_the_readme_states_the_critics_rule_as_the_code_has_it() -> None:
    # The README cannot import the constants: it is held to them here, so a changed
    # weight or threshold that the README still states the old way fails.
    text = " ".join((ROOT / "README.md").read_text().split())
    words = {"scottish_context": "Scottish context", "cfu_strategy": "CFU strategy",
             "scottish_authenticity": "Scottish authenticity"}
    parts = " + ".join(f"{words.get(name, name.replace('_', ' '))} {weight:.2f}"
                       for name, weight in FIDELITY_PARTS.items())
    assert f"SOW fidelity (weight {FIDELITY_WEIGHT:.2f}) = {parts};" in text
    parts = " + ".join(f"{words.get(name, name.replace('_', ' '))} {weight:.2f}"
                       for name, weight in QUALITY_PARTS.items())
    assert f"basic quality ({QUALITY_WEIGHT:.2f}) = {parts}." in text
    assert (f"fidelity >= {FIDELITY_MIN:.2f}, quality >= {QUALITY_MIN:.2f},"
            f" overall >= {OVERALL_MIN:.2f}") in text
    assert f"differ by more than {ARITHMETIC_TOLERANCE}," in text
