"""The CARLA world a run drives in: load a town or build one from OpenDRIVE, synchronous mode, clean-up.

`prepare_world` loads the configured town (`client.load_world`) or builds a world from OpenDRIVE text
(`client.generate_opendrive_world`: an embedded track's export, or an .xodr file), and skips that (slow)
step when the server already shows that map. `SynchronousMode` switches the world to a fixed step with
this client ticking, and puts the original settings back. `Resources` holds everything a run must undo
(actors, settings) so one idempotent `release()` undoes it on every exit path.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from sim.carla.config import CarlaConfig, track_kind
from sim.carla.lazy_import import import_carla

OPENDRIVE_PARAMETERS = {
    "vertex_distance": 1.0,  # mesh vertices every 1 m: smooth on our tightest (15 m radius) curves
    "max_road_length": 50.0,
    "wall_height": 1.0,  # low walls at the road's edge: a car leaving the road collides, never falls
    "additional_width": 0.6,
    "smooth_junctions": True,
    "enable_mesh_visibility": True,
    "enable_pedestrian_navigation": False,
}
"""`carla.OpendriveGenerationParameters` used for worlds built from OpenDRIVE."""


def opendrive_text(track: str) -> str:
    """The OpenDRIVE text of an embedded track name or an .xodr path (see `CarlaConfig.track`)."""
    if track_kind(track) == "xodr":
        path = Path(track)
        if not path.is_file():
            raise FileNotFoundError(f"OpenDRIVE file not found: {path}")
        return path.read_text()
    from sim.tracks.track_gen import make_track
    from sim.tracks.xodr import track_to_xodr

    return track_to_xodr(make_track(track))


def map_short_name(name: str) -> str:
    """`Town01` of `Carla/Maps/Town01` or `/Game/Carla/Maps/Town01`."""
    return str(name).rstrip("/").rsplit("/", 1)[-1]


def prepare_world(client: Any, config: CarlaConfig) -> Any:
    """The world of `config.track`, loaded or built only if the server shows another map.

    The client's timeout is `config.load_timeout_s` while loading and `config.timeout_s` after.
    """
    carla = import_carla()
    kind = track_kind(config.track)
    client.set_timeout(config.load_timeout_s)
    try:
        world = client.get_world()
        if kind == "town":
            if map_short_name(world.get_map().name) != map_short_name(config.track):
                available = [map_short_name(m) for m in client.get_available_maps()]
                if map_short_name(config.track) not in available:
                    raise ValueError(f"the server has no map {config.track!r}; it has {', '.join(available)}")
                world = client.load_world(config.track)
        else:
            xodr = opendrive_text(config.track)
            if world.get_map().to_opendrive() != xodr:
                params = carla.OpendriveGenerationParameters(**OPENDRIVE_PARAMETERS)
                world = client.generate_opendrive_world(xodr, params)
    finally:
        client.set_timeout(config.timeout_s)
    return world


class SynchronousMode:
    """Fixed-step synchronous mode on a world, undone by `restore()` (idempotent).

    Args:
        world: the CARLA world.
        dt_s: the fixed simulation step, s.
    """

    def __init__(self, world: Any, dt_s: float) -> None:
        self.world = world
        self.dt_s = dt_s
        self.original: Any = None

    def enable(self) -> None:
        """Remember the world's settings, then switch to synchronous mode with the fixed step."""
        self.original = self.world.get_settings()
        settings = self.world.get_settings()
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = self.dt_s
        self.world.apply_settings(settings)

    def restore(self) -> None:
        """Put back the settings found by `enable()`."""
        original, self.original = self.original, None
        if original is not None:
            self.world.apply_settings(original)


class Resources:
    """What a CARLA run must undo: its actors (sensors first) and the world's settings.

    Kept apart from the simulator object so a `weakref.finalize` can release them at interpreter exit
    even when the simulator was never closed.
    """

    def __init__(self) -> None:
        self.actors: list[Any] = []
        self.sync: SynchronousMode | None = None

    def destroy_actors(self) -> None:
        """Stop every sensor and destroy every actor, newest first; failures are warnings."""
        actors, self.actors = self.actors, []
        for actor in reversed(actors):
            if hasattr(actor, "listen"):  # a sensor: stop its stream before the actor goes
                _quietly(actor.stop, f"stopping {actor}")
            _quietly(actor.destroy, f"destroying {actor}")

    def release(self) -> None:
        """Destroy the actors, then restore the world's settings (each step runs even if one fails)."""
        self.destroy_actors()
        if self.sync is not None:
            _quietly(self.sync.restore, "restoring the world's settings")
            self.sync = None


def _quietly(action: Any, what: str) -> None:
    try:
        action()
    except Exception as err:  # clean-up must go on; the server may already be gone
        warnings.warn(f"CARLA clean-up: {what} failed: {err}", stacklevel=3)
