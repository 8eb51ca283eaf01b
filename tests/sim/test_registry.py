"""Simulator backends by registry: a toy backend registered in a test records through the CLI;
`SimSpec` configs are strict; the CARLA entry imports nothing of carla until used."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import sim.registry
from common.strict_config import ConfigError, load_config, to_dict
from sim.embedded.simulator import EmbeddedSimConfig
from sim.registry import BACKENDS, SimSpec, make_simulator, register_backend
from sim.safety_driver import SafetyDriverConfig
from sim.types import INFO_KEYS, Command, Observation, Pose, Simulator


@dataclass(frozen=True)
class ToyConfig:
    """A straight road; the image is one grey level."""

    track: str = "line"
    condition: str = "summer"
    dt_ctrl_s: float = 0.1
    target_speed_mps: float = 5.0
    grey: int = 100


class ToySim:
    """A point car on a straight road (lateral offset integrates the curvature), 6x8 grey frames."""

    def __init__(self, config: ToyConfig) -> None:
        self.config = config

    def _step_out(self) -> tuple[Observation, dict[str, Any]]:
        image = np.full((6, 8, 3), self.config.grey, np.uint8)
        obs = Observation(image, self.config.target_speed_mps, self.frame * self.config.dt_ctrl_s, self.frame)
        info = {
            "lateral_offset_m": self.offset_m,
            "heading_error_rad": self.heading_rad,
            "progress_m": self.s_m,
            "on_road": abs(self.offset_m) < 2.0,
            "collision": False,
            "expert_curvature_1pm": -0.2 * self.offset_m - 1.0 * self.heading_rad,
            "pose": Pose(self.s_m, self.offset_m, self.heading_rad),
        }
        return obs, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.frame, self.offset_m, self.heading_rad, self.s_m = 0, 0.0, 0.0, 0.0
        return self._step_out()

    def step(self, command: Command):
        ds = self.config.target_speed_mps * self.config.dt_ctrl_s
        self.heading_rad += command.curvature_1pm * ds
        self.offset_m += np.sin(self.heading_rad) * ds
        self.s_m += ds
        self.frame += 1
        return self._step_out()

    def close(self) -> None:
        pass

    def __enter__(self) -> ToySim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def toy_backend(monkeypatch):
    monkeypatch.setattr(sim.registry, "BACKENDS", dict(BACKENDS))  # registered for this test only
    register_backend("toy", ToyConfig, ToySim)


def test_toy_sim_keeps_the_protocol():
    toy = ToySim(ToyConfig())
    assert isinstance(toy, Simulator)
    assert set(INFO_KEYS) <= set(toy.reset(seed=0)[1])


def test_a_registered_backend_records_through_the_cli(toy_backend, tmp_path, capsys):
    from drive.cli import main
    from drive.closed_loop.record import RecordConfig
    from recordings.reader import Recording

    out = tmp_path / "rec"
    args = ["record", "--sim", "toy", "--minutes", "0.25", "--episodes", "1", "--quiet", "--out", str(out)]
    assert main([*args, "--set", "sim.grey=50"]) == 0
    rec = Recording(out / "episode-0000")
    assert rec.complete and rec.num_frames == 150  # 15 s at 10 Hz
    assert (rec.meta["simulator"], rec.meta["track"], rec.meta["control_period_s"]) == ("toy", "country", 0.1)
    assert rec.meta["config"]["grey"] == 50
    frames = rec.frames()
    assert frames.shape == (150, 6, 8, 3) and np.all(frames == 50)
    tel = rec.telemetry
    np.testing.assert_allclose(tel["progress_m"], 0.5 * np.arange(150), atol=1e-5)
    # Recovery pulses move the car; the label is the toy's expert for the state reached.
    assert np.abs(tel["lateral_offset_m"]).max() > 0.01
    assert np.abs(tel["curvature_1pm"] - tel["expert_curvature_1pm"]).max() >= 0.02  # a pulse
    expected = -0.2 * tel["lateral_offset_m"] - 1.0 * tel["heading_error_rad"]
    np.testing.assert_allclose(tel["expert_curvature_1pm"], expected, atol=1e-5)
    saved = load_config(RecordConfig, out / "record.yaml")
    assert saved.sim == SimSpec("toy", ToyConfig(grey=50))  # tracks: per episode
    # A key the toy's config lacks is one clear line naming it.
    capsys.readouterr()
    assert main([*args, "--set", "sim.fov_deg=70"]) == 2
    assert "sim.fov_deg" in capsys.readouterr().err


def test_sim_spec_is_strict_and_saves_as_it_loads(toy_backend):
    spec = load_config(SimSpec, {"backend": "toy", "grey": 7})
    assert spec == SimSpec("toy", ToyConfig(grey=7)) and str(spec) == "toy"
    assert load_config(SimSpec, to_dict(spec)) == spec
    assert SimSpec().config == EmbeddedSimConfig()  # the default: embedded with its defaults
    with pytest.raises(ConfigError, match="unknown config key 'sim.render'"):
        from drive.closed_loop.record import RecordConfig

        load_config(RecordConfig, {"sim": {"backend": "toy", "render": False}})
    with pytest.raises(ConfigError, match=r"sim.backend: unknown simulator backend 'tpy'.*'toy'"):
        load_config(RecordConfig, {"sim": "tpy"})
    with pytest.raises(ValueError, match="takes a ToyConfig"):
        SimSpec("toy", EmbeddedSimConfig())
    with pytest.raises(ValueError, match="unknown simulator backend 'tpy'"):
        make_simulator("tpy", ToyConfig())


def test_make_simulator_wraps_safety_inside_perturbations_and_tells_the_log_the_noise(toy_backend):
    spec = SimSpec("toy", ToyConfig())
    sim = spec.build(
        safety=SafetyDriverConfig(response="takeover"),  # the toy cannot teleport
        perturbations=[{"name": "gaussian", "variance": 0.1}, {"name": "blur", "sigma_px": 1.0}],
        safety_context={"policy": "p"},
    )
    assert [p["wrapper"] for p in sim.chain()] == ["Blur", "GaussianNoise", "SafetyDriver"]
    assert sim.sim.sim.context == {"policy": "p", "noise_variance": 0.1}
    assert isinstance(sim.unwrapped, ToySim)


def test_the_carla_entry_imports_no_carla_until_used():
    code = (
        "import sys; from sim.registry import BACKENDS, SimSpec; import drive.closed_loop.record;"
        "assert BACKENDS['carla'].config_class().__name__ == 'CarlaConfig';"
        "SimSpec('carla'); assert 'carla' not in sys.modules and 'sim.carla.simulator' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
