"""Every shell command the README shows exists and parses, so the README cannot rot."""

import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from vqa.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def shell_commands(text: str) -> list[str]:
    """Commands in the README's bash blocks: continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.extend(part.strip() for part in line.split("&&"))
    return commands


def me_vqa_invocation(command: str) -> list[str] | None:
    """The me-vqa argv a README command runs (None for commands of other tools)."""
    words = shlex.split(command)
    while words and "=" in words[0]:  # leading VAR=value assignments
        words = words[1:]
    if words[:1] == ["me-vqa"]:
        return words[1:]
    if words[:2] == ["python", "-m"] and words[2:3] == ["vqa"]:
        return words[3:]
    for start in (["python"], ["accelerate", "launch"], ["torchrun"]):
        if words[: len(start)] == start:
            script = next((w for w in words[len(start) :] if w.endswith(".py")), None)
            if script and script.startswith("scripts/") and "/bench/" not in script:
                return [Path(script).stem.replace("_", "-"), *words[words.index(script) + 1 :]]
    return None


@cache
def help_text(command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "vqa", command, "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


INVOCATIONS = [inv for c in shell_commands(README) if (inv := me_vqa_invocation(c))]


def test_readme_shows_the_commands():
    assert "make demo" in shell_commands(README) and "make test" in shell_commands(README)
    assert {argv[0] for argv in INVOCATIONS} >= set(COMMANDS) - {"tiny-model"}


@pytest.mark.parametrize("argv", INVOCATIONS, ids=" ".join)
def test_readme_command_exists_and_its_options_parse(argv):
    assert argv[0] in COMMANDS, f"README runs unknown command {argv[0]!r}"
    text = help_text(argv[0])
    for option in (w.split("=")[0] for w in argv[1:] if w.startswith("--")):
        assert option in text, f"me-vqa {argv[0]} has no option {option}"


def test_readme_scripts_exist():
    for command in shell_commands(README):
        for script in re.findall(r"scripts/[\w/]+\.(?:py|yaml)", command):
            assert (ROOT / script).is_file(), script
