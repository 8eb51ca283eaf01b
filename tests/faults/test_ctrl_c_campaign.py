"""Ctrl-C as a user gives it: `drive eval --record` and `drive launch` run as real subprocesses in their own
session, SIGINT (or SIGTERM) goes to the whole process group (what a terminal does, pool workers
included) at a random moment, then the same command is rerun. The final recordings and results must be
those of an uninterrupted run, and nothing may claim to be complete before it is.

One attempt per command runs in CI (`-m "not slow"`); the full campaign, 10 real interruptions per command
plus `drive record`'s 10 in test_interrupted.py, is `pytest -s tests/faults/test_ctrl_c_campaign.py
tests/faults/test_interrupted.py` (no marker filter; about 20 minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from recordings.reader import Recording
from tests.faults.test_interrupted import _digests

REPO = Path(__file__).resolve().parents[2]
ATTEMPTS = 10
IN_CI = 1
"""Attempt 0 of each command runs in CI; the rest are marked slow."""


def _attempts() -> list[Any]:
    return [pytest.param(i, marks=() if i < IN_CI else pytest.mark.slow) for i in range(ATTEMPTS)]


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "drive", *args]


def _run(cmd: list[str], marks: tuple[Path, ...] = ()) -> list[float]:
    """Run `cmd` to completion; when each of `marks` first existed, in s from the start."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: dict[Path, float] = {}
    while proc.poll() is None:
        seen.update({m: time.monotonic() - start for m in marks if m not in seen and m.exists()})
        assert time.monotonic() < start + 600, f"{cmd} took over 600 s"
        time.sleep(0.02)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 0, err[-2000:]
    end_s = time.monotonic() - start
    return [seen.get(m, end_s) for m in marks]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _interrupt(
    cmd: list[str],
    marks: tuple[Path, ...],
    ref_s: list[float],
    rng: np.random.Generator,
    sig: int,
    shrink: float = 1.0,
) -> int:
    """Start `cmd` in a new session and signal its process group at a random moment of a random stage.

    `marks` are files the command writes as it goes (the first once it is past its start-up, the last its
    final output), `ref_s` when they appeared in an uninterrupted run. A stage k (between marks k and
    k + 1) is drawn, the command is let run until mark k exists, then for a random part of what stage k
    took in the reference (scaled by how fast this run reached mark k: the machine may be busier or
    idler than during the reference; times `shrink`), and then the whole process group is signalled, as
    a terminal does.

    Returns the exit status. A signal that lands after the work is done (the last mark exists) may meet the
    interpreter's shutdown, which restores the default handler: then the process dies of the signal,
    which is fine, since there is nothing left to lose.
    """
    stage = int(rng.integers(0, len(marks) - 1))
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    while not marks[stage].exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < start + 600, f"{cmd} made no progress"
        time.sleep(0.01)
    scale = (time.monotonic() - start) / max(ref_s[stage], 1e-3)
    time.sleep(float(rng.uniform(0.0, 0.9 * shrink * scale * (ref_s[stage + 1] - ref_s[stage]))))
    at_s = time.monotonic() - start
    sent_at = time.time()  # wall clock, to compare with the final output's mtime
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.wait(timeout=120)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert "Traceback" not in err, err[-3000:]
    # Exit 0 with the final output written after the signal: the work went on to the end, so the signal was
    # lost (e.g. swallowed inside a finalizer). Written before it, the work had simply finished first.
    finished_after = not marks[-1].exists() or marks[-1].stat().st_mtime > sent_at
    assert not (proc.returncode == 0 and finished_after), f"{signal.Signals(sig).name} was lost"
    if proc.returncode == -sig:
        assert marks[-1].exists(), f"killed by signal {sig} before it finished"
    else:
        assert proc.returncode in (0, 130, 143), (proc.returncode, err[-2000:])
    done = [m.name for m in marks if m.exists()]
    print(f"{signal.Signals(sig).name} at {at_s:.1f} s (stage {stage}): exit {proc.returncode}, {done}")
    return proc.returncode


def _interrupt_for_real(
    cmd: list[str], out: Path, marks: tuple[Path, ...], ref_s: list[float], seed: int, sig: int
) -> int:
    """`_interrupt` until the signal lands before the command finished (each retry in an emptied `out`,
    with the random moment drawn from a shorter span), so that every attempt is a real interruption."""
    rng = np.random.default_rng(seed)
    for shrink in (1.0, 0.5, 0.25, 0.1):
        code = _interrupt(cmd, marks, ref_s, rng, sig, shrink)
        if code in (130, 143):
            return code
        shutil.rmtree(out)
    raise AssertionError(f"{cmd} finished before every signal")


def _results(metrics_json: Path, root: Path) -> dict[str, Any]:
    """An evaluation's results without its timing (wall clock), paths under `root` written `<root>`."""
    metrics = json.loads(metrics_json.read_text().replace(str(root), "<root>"))
    return {k: metrics[k] for k in ("episodes", "aggregate", "lipschitz")}


EVAL_MARKS = ("eval.yaml", "metrics.json")
"""What `drive eval` writes once past start-up, and at the end."""


# --- drive eval --record ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eval_case(tmp_path_factory) -> dict[str, Any]:
    """A random-weight NCP checkpoint, the eval command line (2 workers) and its uninterrupted results."""
    from policies.checkpoint import save_checkpoint
    from policies.registry import build_policy

    root = tmp_path_factory.mktemp("eval")
    ckpt = save_checkpoint(root / "ncp.pt", build_policy("ncp-ltc"))
    args = ["eval", "--policy", "expert", "--policy", str(ckpt), "--seeds", "0,1", "--noise", "0,0.2"]
    args += ["--max-steps", "60", "--track", "oval", "--record", "--workers", "2", "--quiet", "--out"]
    ref = root / "ref"
    ref_s = _run(_command(*args, str(ref)), tuple(ref / m for m in EVAL_MARKS))
    return {
        "args": args,
        "ref_s": ref_s,
        "episodes": _digests(ref / "episodes"),
        "results": _results(ref / "metrics.json", ref),
    }


@pytest.mark.parametrize("attempt", _attempts())
def test_ctrl_c_during_eval_then_rerun_gives_the_uninterrupted_results(tmp_path, eval_case, attempt):
    sig = (signal.SIGINT, signal.SIGTERM)[attempt % 5 == 4]
    out = tmp_path / "eval"
    cmd = _command(*eval_case["args"], str(out))
    marks = tuple(out / m for m in EVAL_MARKS)
    _interrupt_for_real(cmd, out, marks, eval_case["ref_s"], 100 + attempt, sig)
    assert not (out / "metrics.json").exists()  # no report of a run that did not finish
    print("  episodes left complete:", sum(Recording(p).complete for p in (out / "episodes").glob("*")))
    _run(cmd)
    assert _digests(out / "episodes") == eval_case["episodes"]
    assert _results(out / "metrics.json", out) == eval_case["results"]


# --- drive launch -----------------------------------------------------------------------------------

TINY_LAUNCH = {
    "name": "ctrl-c",
    "out": "out",
    "record": {"tracks": ["oval"], "conditions": ["summer"], "episodes": 2, "minutes": 0.2},
    "train": {
        "config": str(REPO / "launch" / "train_default.yaml"),
        "policies": ["ncp-ltc", "cnn"],
        "overrides": [
            "epochs=2",
            "batch=2",
            "data.window=4",
            "data.stride=4",
            "log_interval=1",
            "checkpoint_interval=3",
        ],
    },
    "eval": {
        "track": "forest",
        "noise": [0.0, 0.1],
        "seeds": [0],
        "laps": None,
        "max_steps": 30,
        "workers": 2,
    },
    "export": {"policy": "ncp-ltc", "parity_steps": 5},
    "onboard": {"laps": 1, "max_time_s": 1.0, "precisions": ["fp32"]},
}


LAUNCH_MARKS = (
    "launch.yaml",
    "record/DONE",
    "train/ncp-ltc/DONE",
    "train/cnn/DONE",
    "eval/metrics.json",
    "export/model.onnx",
    "onboard/metrics.json",
    "report.md",
)
"""What a launch writes as it goes: past start-up, then each stage's output, in order."""


def _launch_file(folder: Path) -> Path:
    folder.mkdir(parents=True)
    path = folder / "launch.yaml"
    path.write_text(yaml.safe_dump(TINY_LAUNCH))
    return path


def _launch_outputs(out: Path) -> dict[str, Any]:
    return {
        "record": _digests(out / "record"),
        "eval": _results(out / "eval" / "metrics.json", out),
        "onboard": {
            k: v["interventions"]
            for k, v in json.loads((out / "onboard" / "metrics.json").read_text()).items()
        },
    }


@pytest.fixture(scope="module")
def launch_case(tmp_path_factory) -> dict[str, Any]:
    path = _launch_file(tmp_path_factory.mktemp("launch") / "files")
    out = path.parent / "out"
    ref_s = _run(_command("launch", str(path), "--quiet"), tuple(out / m for m in LAUNCH_MARKS))
    return {"ref_s": ref_s, "outputs": _launch_outputs(out)}


@pytest.mark.parametrize("attempt", _attempts())
def test_ctrl_c_during_a_launch_then_rerun_gives_the_uninterrupted_outputs(tmp_path, launch_case, attempt):
    sig = (signal.SIGINT, signal.SIGTERM)[attempt % 5 == 4]
    path = _launch_file(tmp_path / "files")
    out = path.parent / "out"
    cmd = _command("launch", str(path), "--quiet")
    marks = tuple(out / m for m in LAUNCH_MARKS)
    _interrupt_for_real(cmd, out, marks, launch_case["ref_s"], 200 + attempt, sig)
    assert not (out / "report.md").exists()
    _run(cmd)
    assert _launch_outputs(out) == launch_case["outputs"]
    shutil.rmtree(out)
