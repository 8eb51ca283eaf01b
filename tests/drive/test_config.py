"""Strict configs: unknown keys and wrong types are errors naming the key; overrides; round trip."""

from __future__ import annotations

import doctest
from dataclasses import dataclass, field

import pytest

import common.strict_config
from common.strict_config import ConfigError, digest, load_config, save_config, to_dict


@dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True)
class Run:
    name: str
    steps: int = 10
    policy: str = "ncp-ltc"
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str | None = None
    amp: bool = False
    optim: Optim = field(default_factory=Optim)


def test_doctests():
    assert doctest.testmod(common.strict_config).failed == 0


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("name: demo\nsteps: 3\noptim:\n  lr: 0.01\n")
    cfg = load_config(Run, path, ["optim.lr=3e-4", "seeds=[1,2]", "device=cuda", "amp=true"])
    assert cfg == Run(name="demo", steps=3, seeds=[1, 2], device="cuda", amp=True, optim=Optim(lr=3e-4))
    assert load_config(Run, {"name": "x"}, ["seeds=0,1,2"]).seeds == [0, 1, 2]


def test_round_trip_through_saved_yaml(tmp_path):
    cfg = load_config(Run, {"name": "x", "optim": {"betas": [0.8, 0.9]}})
    save_config(cfg, tmp_path / "c.yaml")
    again = load_config(Run, tmp_path / "c.yaml")
    assert again == cfg and digest(again) == digest(cfg)
    assert to_dict(cfg)["optim"]["betas"] == [0.8, 0.9]


@pytest.mark.parametrize(
    "data, overrides, key",
    [
        ({"name": "x", "stepz": 3}, [], "stepz"),
        ({"name": "x"}, ["optim.lrr=1"], "optim.lrr"),
        ({"name": "x", "steps": "ten"}, [], "steps"),
        ({"name": "x", "steps": 2.5}, [], "steps"),
        ({"name": "x", "amp": "yes"}, [], "amp"),
        ({"name": "x", "optim": {"lr": "fast"}}, [], "optim.lr"),
        ({"name": "x", "seeds": ["a"]}, [], "seeds[0]"),
        ({"name": "x", "optim": {"betas": [0.9]}}, [], "optim.betas"),
        ({}, [], "name"),
        ({"name": "x"}, ["optim=3"], "optim"),
    ],
)
def test_errors_name_the_key(data, overrides, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_config(Run, data, overrides)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Run, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(Run, bad)
    with pytest.raises(ConfigError, match="a.b=value"):
        load_config(Run, {"name": "x"}, ["novalue"])
