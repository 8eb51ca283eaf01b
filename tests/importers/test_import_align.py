"""Alignment and label conversion, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drive.importers.align import Series, align, sample
from drive.importers.config import AlignConfig, LabelConfig, VehicleConfig
from drive.importers.steering import count_beyond_lock, resolve_conversion


def test_interpolation_uses_only_brackets_within_tolerance():
    labels = Series(np.array([0.0, 0.1, 0.5]), np.array([1.0, 2.0, 6.0]))
    values, valid = sample(labels, np.array([0.05, 0.1, 0.3, 0.6]), "interpolate", 0.1)
    # 0.05: halfway between 1 and 2; 0.1: exact; 0.3: brackets 0.4 s apart > 2 * 0.1; 0.6: past the end
    assert valid.tolist() == [True, True, False, False]
    assert values[:2].tolist() == [1.5, 2.0] and np.isnan(values[2:]).all()
    values, valid = sample(labels, np.array([0.05, 0.19, 0.21, 0.6]), "nearest", 0.1)
    assert valid.tolist() == [True, True, False, True] and values[[0, 1, 3]].tolist() == [1.0, 2.0, 6.0]


def test_grid_splits_at_missing_labels_and_drops_short_runs():
    frames = 0.05 * np.arange(20)
    label_t = np.array([t for t in 0.05 * np.arange(20) if not 0.3 <= t <= 0.55])
    labels = Series(label_t, label_t * 10)
    config = AlignConfig(min_episode_frames=6, label_tolerance_s=0.06)
    result = align(frames, labels, None, config)
    # steps 6..11 (0.30-0.55 s) lack a label; steps 0..5 form a run of 6, steps 12..19 a run of 8
    assert [s.steps.tolist() for s in result.segments] == [list(range(6)), list(range(12, 20))]
    assert result.dropped == {"no steering label within align.label_tolerance_s": 6}
    for segment in result.segments:  # each step's label is its own time's label: nothing shifted
        np.testing.assert_allclose(segment.label, segment.times_s * 10)
    short = align(frames, labels, None, AlignConfig(min_episode_frames=7, label_tolerance_s=0.06))
    assert [len(s) for s in short.segments] == [8]
    assert short.dropped["in a run shorter than align.min_episode_frames"] == 6


def test_slow_camera_reuses_frames_and_reports_it():
    frames = 0.1 * np.arange(10)  # a 10 Hz camera on a 20 Hz grid
    labels = Series(0.01 * np.arange(100), np.zeros(100))
    result = align(frames, labels, None, AlignConfig(frame_tolerance_s=0.05, min_episode_frames=1))
    [segment] = result.segments
    assert len(segment) == 19 and result.frames_reused == 9  # every odd step falls between two frames
    assert np.all(np.abs(frames[segment.frame_index] - segment.times_s) <= 0.05 + 1e-9)
    strict = align(frames, labels, None, AlignConfig(frame_tolerance_s=0.03, min_episode_frames=1))
    assert strict.dropped == {"no camera frame within align.frame_tolerance_s": 9}


def test_conversions_units_and_signs():
    car = VehicleConfig(wheelbase_m=2.0, max_steer_rad=0.5, steering_ratio=16.0)
    road = resolve_conversion(LabelConfig(kind="road_wheel_angle", unit="deg"), car, None, True)
    assert road.curvature_1pm(np.array([10.0]))[0] == pytest.approx(math.tan(math.radians(10)) / 2.0)
    wheel = resolve_conversion(LabelConfig(kind="steering_wheel_angle", left_positive=False), car, None, True)
    assert wheel.curvature_1pm(np.array([1.6]))[0] == pytest.approx(-math.tan(0.1) / 2.0)
    donkey = resolve_conversion(LabelConfig(), car, "normalized", False)
    assert donkey.curvature_1pm(np.array([-1.0, 0.0, 1.0])).tolist() == pytest.approx(
        [math.tan(0.5) / 2.0, 0.0, -math.tan(0.5) / 2.0]
    )
    assert donkey.formula() == "curvature_1pm = tan(-value*0.5) / 2"
    curvature = resolve_conversion(LabelConfig(kind="curvature"), VehicleConfig(), None, True)
    assert curvature.curvature_1pm(np.array([0.05]))[0] == 0.05 and curvature.wheelbase_m == 0.0
    assert count_beyond_lock(donkey, np.array([0.5, 1.2, -1.01]), 0.5) == 2
    assert count_beyond_lock(road, np.array([10.0, 40.0]), 0.5) == 1  # 40 deg > 0.5 rad (28.6 deg)
    with pytest.raises(ValueError, match="vehicle.steering_ratio is needed"):
        resolve_conversion(
            LabelConfig(kind="steering_wheel_angle"), VehicleConfig(wheelbase_m=2.0), None, True
        )
