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


# A registry-dispatched field (`common.strict_config.Dispatched`): the tag picks the dataclass.
@dataclass(frozen=True)
class Circle:
    radius_m: float = 1.0


@dataclass(frozen=True)
class Box:
    width_m: float = 1.0
    height_m: float = 2.0


SHAPES = {"circle": Circle, "box": Box}


@dataclass(frozen=True)
class Shape(common.strict_config.Dispatched):
    tag_key = "kind"
    kind: str = "circle"
    params: object = None

    @classmethod
    def registry_config(cls, tag: str, key: str) -> type:
        if tag not in SHAPES:
            raise ConfigError(f"{key}: unknown shape {tag!r}")
        return SHAPES[tag]

    @classmethod
    def from_tagged(cls, tag: str, config: object) -> Shape:
        return cls(tag, config)

    def to_config(self) -> dict:
        return {"kind": self.kind, **self.params.__dict__}


@dataclass(frozen=True)
class Scene:
    shape: Shape = field(default_factory=lambda: Shape("circle", Circle()))
    count: int = 1


def test_dispatched_field_loads_by_tag_strictly_and_round_trips(tmp_path):
    assert load_config(Scene, {"shape": "box"}).shape == Shape("box", Box())  # the shorthand
    scene = load_config(Scene, {"shape": {"kind": "box", "width_m": 3}})
    assert scene.shape == Shape("box", Box(width_m=3.0))
    with pytest.raises(ConfigError, match=r"unknown config key 'shape.radius_m'"):
        load_config(Scene, {"shape": {"kind": "box", "radius_m": 3}})
    with pytest.raises(ConfigError, match=r"shape.kind: unknown shape 'hexagon'"):
        load_config(Scene, {"shape": "hexagon"})
    assert load_config(Scene, {"shape": {"radius_m": 3}}).shape == Shape("circle", Circle(3.0))  # default tag
    with pytest.raises(ConfigError, match=r"missing config key 'shape.kind'"):
        load_config(Scene, {"shape": {"kind": None}})
    with pytest.raises(ConfigError, match=r"shape.width_m: expected a number"):
        load_config(Scene, {"shape": {"kind": "box", "width_m": "wide"}})
    # Overrides expand the shorthand; over a mapping they keep its other keys.
    assert load_config(Scene, {"shape": "box"}, ["shape.height_m=5"]).shape.params == Box(1.0, 5.0)
    assert load_config(Scene, {}, ["shape.kind=box", "shape.width_m=4"]).shape.params == Box(4.0, 2.0)
    # Saved in the form it loads from.
    assert to_dict(scene) == {"shape": {"kind": "box", "width_m": 3.0, "height_m": 2.0}, "count": 1}
    save_config(scene, tmp_path / "scene.yaml")
    assert load_config(Scene, tmp_path / "scene.yaml") == scene
