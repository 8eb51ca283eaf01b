"""A track's scenery, built once per process: the resampled road, its ground patches and its trees.

They depend on the track alone (its centre line, widths and `scenery_seed`), not on the condition or the
render seed, yet placing the patches clear of the road is most of a `Renderer`'s construction (~20 ms of
~26 on `forest`), and an evaluation builds a renderer per episode. Keyed by the track's content, so an
equal track built again (as every episode does) finds its entry; the arrays are shared read-only.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict

import numpy as np

from sim.embedded.scenery import (
    GroundPatches,
    RoadGeometry,
    Trees,
    place_ground_patches,
    place_trees,
    resample_track,
)
from sim.tracks.track import Track

CACHED_TRACKS = 8
"""Tracks kept per process (a study's held-out tracks and conditions fit; each entry is < 1 MB)."""

_CACHE: OrderedDict[str, tuple[RoadGeometry, GroundPatches, Trees]] = OrderedDict()


def track_key(track: Track) -> str:
    """sha1 of every field of `track` the scenery is built from (not `extras`)."""
    digest = hashlib.sha1()
    for f in dataclasses.fields(track):
        if not f.compare:
            continue
        value = getattr(track, f.name)
        digest.update(
            np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray) else repr(value).encode()
        )
    return digest.hexdigest()


def track_scenery(track: Track) -> tuple[RoadGeometry, GroundPatches, Trees]:
    """(resampled road, ground patches, trees) of `track`, as `resample_track`, `place_ground_patches`
    and `place_trees` build them; computed on the first call per track in this process."""
    key = track_key(track)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    geometry = resample_track(track)
    entry = (geometry, place_ground_patches(track, geometry), place_trees(track, geometry))
    for part in entry:
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False  # shared between renderers: a write would be a bug
    _CACHE[key] = entry
    while len(_CACHE) > CACHED_TRACKS:
        _CACHE.popitem(last=False)
    return entry
