import subprocess
import sys

import pytest

from vqa.cli import COMMANDS, main


def test_top_level_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_no_command_is_an_error(capsys):
    assert main([]) == 2


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_explains_itself(name):
    done = subprocess.run(
        [sys.executable, "-m", "vqa", name, "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"me-vqa {name}" in done.stdout
