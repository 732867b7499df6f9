"""README.md opens with the two commands a newcomer needs, and CI runs the second one."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _opening_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None and text.index(block.group(0)) < 40, "README must open with the commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_install_run_and_test_commands() -> None:
    install_and_run, run_tests = _opening_commands()
    assert install_and_run.endswith("tradehost run") and "pip install" in install_and_run
    assert run_tests.endswith("python -m pytest") and "[test]" in run_tests


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, run_tests = _opening_commands()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert run_tests in ci
