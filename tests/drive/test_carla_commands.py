"""The CARLA parts of the CLI: `drive carla check`, `drive sim export-xodr`, `drive record --sim carla`."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from common.strict_config import ConfigError, load_config
from drive.cli import main
from drive.closed_loop.record import RecordConfig
from sim.tracks.track_gen import make_track
from sim.tracks.xodr import track_to_xodr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_export_xodr_writes_the_track(tmp_path, capsys):
    out = tmp_path / "maps" / "forest.xodr"
    assert main(["sim", "export-xodr", "--track", "forest", str(out)]) == 0
    assert out.read_text() == track_to_xodr(make_track("forest"))
    assert "forest" in capsys.readouterr().out
    assert main(["sim", "export-xodr", "--track", "nowhere", str(out)]) == 2


@pytest.mark.carla
def test_exported_file_loads_in_carla(tmp_path):
    carla = pytest.importorskip("carla")
    out = tmp_path / "country.xodr"
    main(["sim", "export-xodr", "--track", "country", str(out)])
    carla_map = carla.Map("country", out.read_text())
    assert carla_map.get_waypoint_xodr(1, -1, 0.0).lane_width == pytest.approx(3.5)


@pytest.mark.carla
def test_check_without_a_server_fails_fast_and_says_how_to_start_one(capsys):
    port = _closed_port()
    started = time.monotonic()
    assert main(["carla", "check", "--port", str(port), "--timeout", "1"]) == 1
    assert time.monotonic() - started < 2.0
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "CarlaUE4.sh -RenderOffScreen" in err and "docker run" in err


@pytest.mark.carla
def test_check_reports_versions_and_maps(fake_server, capsys):
    assert main(["carla", "check"]) == 0
    out = capsys.readouterr().out
    assert "CARLA server at 127.0.0.1:2000" in out
    assert "client 0.9.16, server 0.9.16" in out
    assert "current map: Town01 (synchronous mode off, fixed step variable)" in out
    assert "maps (1): Town01" in out


@pytest.mark.carla
def test_record_on_carla_end_to_end(fake_server, tmp_path):
    from recordings.reader import Recording

    out = tmp_path / "rec"
    args = ["record", "--sim", "carla", "--town", "Town01,oval", "--condition", "summer,night"]
    assert main([*args, "--minutes", "0.1", "--episodes", "2", "--quiet", "--out", str(out)]) == 0
    first, second = (Recording(out / f"episode-000{i}") for i in range(2))
    assert first.complete and first.num_frames == 60
    assert (first.meta["simulator"], first.meta["track"], first.meta["condition"]) == (
        "carla",
        "Town01",
        "summer",
    )
    assert (second.meta["track"], second.meta["condition"]) == ("oval", "night")
    assert first.meta["config"]["port"] == 2000
    assert first.frames().shape == (60, 78, 200, 3)
    tel = first.telemetry
    assert np.all(np.abs(tel["lateral_offset_m"]) < 1.0) and not tel["intervention"].any()
    saved = load_config(RecordConfig, out / "record.yaml")
    assert saved.sim.backend == "carla" and saved.tracks == ["Town01", "oval"]
    assert fake_server.world.settings.synchronous_mode is False  # restored after every episode
    assert all(not a.is_alive for a in fake_server.world.actors)


@pytest.mark.carla
def test_record_without_a_server_is_one_clear_line(tmp_path, capsys):
    port = _closed_port()
    args = ["record", "--sim", "carla", "--out", str(tmp_path / "r"), "--quiet"]
    assert main([*args, "--set", f"sim.port={port}", "--set", "sim.timeout_s=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no CARLA server at 127.0.0.1:{port}" in err


def test_carla_launch_file_and_strict_carla_section():
    config = load_config(RecordConfig, "launch/carla_town01.yaml")
    assert config.sim.backend == "carla" and config.tracks == ["Town01"]
    assert config.sim.config.port == 2000 and config.sim.config.camera.width == 200
    assert config.episode_sim("Town01", "rain").config.condition == "rain"
    with pytest.raises(ConfigError, match="sim.prot"):
        load_config(RecordConfig, {"sim": {"backend": "carla", "prot": 2002}})
    with pytest.raises(ConfigError, match="sim.render"):  # an embedded key, not CARLA's
        load_config(RecordConfig, {"sim": {"backend": "carla", "render": False}})
    with pytest.raises(ConfigError, match="sim.backend.*'carl'"):
        load_config(RecordConfig, {"sim": "carl"})
    # `--set` over the shorthand expands it; over a mapping it keeps the other keys.
    assert load_config(RecordConfig, {"sim": "carla"}, ["sim.port=2002"]).sim.config.port == 2002
    over = load_config(RecordConfig, "launch/carla_town01.yaml", ["sim.port=2002"]).sim.config
    assert (over.port, over.vehicle) == (2002, "vehicle.tesla.model3")
    with pytest.raises(ConfigError, match="neither a CARLA town"):
        load_config(RecordConfig, {"sim": "carla", "tracks": ["Townhall"]})
    with pytest.raises(ConfigError, match="unknown track 'Town01'"):
        load_config(RecordConfig, {"sim": "embedded", "tracks": ["Town01"]})
