"""`drive eval --sim carla` end to end through the fake CARLA server (tests/sim/fake_carla.py): an embedded
track (the server builds it from its OpenDRIVE export) and a town (no track map), and the CARLA-only
config rule (no more workers than servers)."""

from __future__ import annotations

import json

import pytest
import torch

from common.strict_config import load_config
from drive.cli import main
from drive.eval.plan import EvalConfig

pytest.importorskip("carla")
pytestmark = pytest.mark.carla


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    from policies.checkpoint import save_checkpoint
    from policies.registry import build_policy

    torch.manual_seed(1)
    return str(save_checkpoint(tmp_path_factory.mktemp("ckpt") / "ncp-ltc.pt", build_policy("ncp-ltc")))


def _eval(checkpoint: str, out, *extra: str) -> int:
    args = ["eval", "--sim", "carla", "--policy", checkpoint, "--noise", "0,0.1", "--seeds", "0"]
    return main([*args, "--max-steps", "30", "--workers", "1", "--out", str(out), "--quiet", *extra])


@pytest.mark.parametrize(("track", "opendrive"), [("oval", True), ("Town01", False)])
def test_eval_on_carla_writes_the_report(fake_server, checkpoint, tmp_path, capsys, track, opendrive):
    out = tmp_path / "report"
    assert _eval(checkpoint, out, "--track", track) == 0
    assert "ncp-ltc" in capsys.readouterr().out
    # An embedded track is built from its OpenDRIVE export; a town is the server's own map.
    assert ("OpenDriveMap" in fake_server.loads) is opendrive
    data = json.loads((out / "metrics.json").read_text())
    assert data["config"]["sim"]["backend"] == "carla" and data["config"]["sim"]["track"] == track
    assert [e["id"] for e in data["episodes"]] == [
        "ncp-ltc_summer_noise0_seed0",
        "ncp-ltc_summer_noise0.1_seed0",
    ]
    assert all(e["metrics"]["frames"] == 31 for e in data["episodes"])
    report = (out / "report.md").read_text()
    assert f"Track `{track}`" in report and "on the carla simulator" in report
    # The track map needs the track's geometry: drawn for the embedded track, skipped for a town.
    assert (out / "plots" / "trajectory_ncp-ltc.png").is_file() is opendrive
    assert ("plots/trajectory_ncp-ltc.png" in data["figures"]) is opendrive
    saved = load_config(EvalConfig, out / "eval.yaml")
    assert saved.sim.backend == "carla" and saved.sim.config.track == track and saved.sim.config.port == 2000
    assert fake_server.world.settings.synchronous_mode is False  # restored after every episode
    assert all(not a.is_alive for a in fake_server.world.actors)


def test_eval_on_carla_with_two_workers_and_one_server_is_a_config_error(checkpoint, tmp_path, capsys):
    assert _eval(checkpoint, tmp_path / "report", "--workers", "2") == 2
    err = capsys.readouterr().err
    assert "workers 2 with sim 'carla' needs as many CARLA servers" in err and "got 1" in err
    assert not (tmp_path / "report").exists()  # refused before anything ran
