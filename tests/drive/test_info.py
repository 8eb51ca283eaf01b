"""`drive info` prints the paper's counts; `drive --help` lists the subcommands."""

from __future__ import annotations

import subprocess
import sys

from drive.cli import main


def test_info_prints_the_papers_counts(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "perception 79,420" in out
    assert "neurons: 19 (inter 12, command 6, motor 1)" in out
    assert "252 = 192 sensory" in out and "60 internal" in out
    assert "3·19 + 4·252 = 1,065" in out
    assert main(["info", "--policy", "cnn"]) == 0
    assert "5,068,900" in capsys.readouterr().out
    assert main(["info", "--policy", "lstm"]) == 0
    assert "head 24,897" in capsys.readouterr().out


def test_unknown_policy_is_one_clear_line(capsys):
    assert main(["info", "--policy", "gpt"]) == 2
    err = capsys.readouterr().err
    assert "unknown policy 'gpt'" in err and "ncp-ltc" in err and "Traceback" not in err


def test_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "drive", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("info", "record", "recordings", "sim", "export"):
        assert command in out
