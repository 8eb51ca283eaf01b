"""The per-process scenery cache: an equal track finds its entry, renders stay bit-identical, entries are
read-only and bounded."""

from __future__ import annotations

import numpy as np
import pytest

from sim.embedded import scenery_cache
from sim.embedded.camera import Renderer
from sim.embedded.scenery import place_ground_patches, place_trees, resample_track
from sim.tracks.track_gen import make_track
from sim.types import Pose


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch):
    monkeypatch.setattr(scenery_cache, "_CACHE", type(scenery_cache._CACHE)())


def _poses(track, n=6):
    k = np.linspace(0, len(track.s_m) - 1, n).astype(int)
    return [
        Pose(float(x), float(y), float(h)) for (x, y), h in zip(track.centre_xy_m[k], track.heading_rad[k])
    ]


def test_an_equal_track_built_again_finds_its_entry_and_renders_the_same():
    first = scenery_cache.track_scenery(make_track("forest"))
    again = scenery_cache.track_scenery(make_track("forest"))  # a new, equal Track object
    assert all(a is b for a, b in zip(first, again))
    track = make_track("forest")
    geometry = resample_track(track)
    np.testing.assert_array_equal(first[0].centre_xy_m, geometry.centre_xy_m)
    np.testing.assert_array_equal(first[1].polygons_xy_m, place_ground_patches(track, geometry).polygons_xy_m)
    np.testing.assert_array_equal(first[2].base_xy_m, place_trees(track, geometry).base_xy_m)
    cached = Renderer(track, condition="summer", seed=3)
    scenery_cache._CACHE.clear()
    fresh = Renderer(track, condition="summer", seed=3)
    for pose in _poses(track):
        np.testing.assert_array_equal(cached.render(pose), fresh.render(pose))


def test_entries_are_read_only_keyed_by_content_and_bounded(monkeypatch):
    geometry, patches, trees = scenery_cache.track_scenery(make_track(7))
    with pytest.raises(ValueError, match="read-only"):
        trees.base_xy_m[0, 0] = 1.0
    other = scenery_cache.track_scenery(make_track(8))
    assert other[0] is not geometry and scenery_cache.track_key(make_track(7)) != scenery_cache.track_key(
        make_track(8)
    )
    monkeypatch.setattr(scenery_cache, "CACHED_TRACKS", 2)
    scenery_cache.track_scenery(make_track(9))
    assert (
        len(scenery_cache._CACHE) == 2 and scenery_cache.track_key(make_track(7)) not in scenery_cache._CACHE
    )
