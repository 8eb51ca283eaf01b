"""Preprocessing: the contract, the crop, cv2 vs torch resizing (<= 1 grey level), standardisation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from common.strict_config import ConfigError, from_dict
from perception.preprocess import PreprocessContract, crop_box, preprocess_u8, resize_weights
from perception.tensor_preprocess import Preprocess, preprocess_torch, standardize

ROOT = Path(__file__).resolve().parents[2]


def _images(b: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (b, h, w, 3), dtype=np.uint8)


# --- contract -------------------------------------------------------------------------------------


def test_contract_round_trips_and_rejects_unknown_keys():
    contract = PreprocessContract(crop_top_frac=0.3, crop_bottom_frac=0.1)
    assert from_dict(PreprocessContract, contract.to_dict()) == contract
    assert PreprocessContract().to_dict() == {
        "out_height": 78,
        "out_width": 200,
        "crop_top_frac": 0.0,
        "crop_bottom_frac": 0.0,
    }
    with pytest.raises(ConfigError, match="crop_left_frac"):
        from_dict(PreprocessContract, {"crop_left_frac": 0.1})
    with pytest.raises(ConfigError, match="contract.out_height"):
        from_dict(PreprocessContract, {"out_height": "78"}, prefix="contract.")
    assert from_dict(PreprocessContract, {"crop_top_frac": 0.25}) == PreprocessContract(crop_top_frac=0.25)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"out_height": 0}, "out_height"),
        ({"out_width": 7.5}, "out_width"),
        ({"crop_top_frac": -0.1}, "crop_top_frac"),
        ({"crop_bottom_frac": 1.0}, "crop_bottom_frac"),
        ({"crop_top_frac": 0.6, "crop_bottom_frac": 0.4}, "crop_top_frac \\+ crop_bottom_frac"),
    ],
)
def test_contract_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        PreprocessContract(**kwargs)


def test_crop_box_rows():
    contract = PreprocessContract(crop_top_frac=0.25, crop_bottom_frac=0.1)
    assert crop_box(480, 640, contract) == (120, 432)
    assert crop_box(78, 200, PreprocessContract()) == (0, 78)
    with pytest.raises(ValueError, match="no rows"):
        crop_box(3, 10, PreprocessContract(crop_top_frac=0.5, crop_bottom_frac=0.4))


# --- cv2 path -------------------------------------------------------------------------------------


def test_u8_is_the_identity_at_78x200():
    images = _images(3, 78, 200)
    out = preprocess_u8(images, PreprocessContract())
    assert out.dtype == np.uint8 and np.array_equal(out, images)
    assert np.array_equal(preprocess_u8(images[0], PreprocessContract()), images[0])  # single (H, W, 3)


def test_u8_crops_then_resizes_a_480x640_camera():
    # Rows 0..119 red (cropped away), rows 432.. blue (cropped away), the road between is a ramp in x.
    image = np.zeros((480, 640, 3), np.uint8)
    image[:120] = (255, 0, 0)
    image[432:] = (0, 0, 255)
    image[120:432, :, 1] = np.linspace(0, 255, 640).astype(np.uint8)
    out = preprocess_u8(image, PreprocessContract(crop_top_frac=0.25, crop_bottom_frac=0.1))
    assert out.shape == (78, 200, 3)
    assert out[..., 0].max() == 0 and out[..., 2].max() == 0  # nothing of the cropped bands survives
    green = out[..., 1].astype(float)
    assert np.all(np.diff(green[0]) >= 0)  # the ramp stays a ramp
    assert abs(green.mean() - image[120:432, :, 1].mean()) < 0.5  # area averaging keeps the mean
    expected = cv2.resize(image[120:432], (200, 78), interpolation=cv2.INTER_AREA)
    assert np.array_equal(out, expected)


def test_u8_rejects_float_and_channels_first():
    with pytest.raises(ValueError, match=r"uint8 RGB images \(channels last\)"):
        preprocess_u8(np.zeros((78, 200, 3), np.float32), PreprocessContract())
    with pytest.raises(ValueError, match=r"\(H, W, 3\) or \(B, H, W, 3\)"):
        preprocess_u8(np.zeros((2, 3, 78, 200), np.uint8), PreprocessContract())


# --- torch path -----------------------------------------------------------------------------------


def test_resize_weights_rows_sum_to_one():
    for src, dst in [((480, 640), (78, 200)), ((60, 150), (78, 200)), ((300, 100), (78, 200))]:
        rows, cols = resize_weights(src, dst)
        assert rows.shape == (dst[0], src[0]) and cols.shape == (dst[1], src[1])
        np.testing.assert_allclose(rows.sum(1), 1.0, atol=1e-6)
        np.testing.assert_allclose(cols.sum(1), 1.0, atol=1e-6)
        assert rows.min() >= 0 and cols.min() >= 0


def test_torch_is_the_exact_identity_at_78x200():
    images = torch.from_numpy(_images(2, 78, 200))
    out = preprocess_torch(images, PreprocessContract())
    assert out is images
    cropped = torch.from_numpy(_images(2, 100, 200))
    out = preprocess_torch(cropped, PreprocessContract(crop_top_frac=0.22))  # 22 rows off -> 78 rows
    assert torch.equal(out, cropped[:, 22:])


@pytest.mark.parametrize(
    "size_hw, crop",
    [
        ((480, 640), (0.0, 0.0)),  # shrink, fractional area weights
        ((480, 640), (0.25, 0.1)),  # with a crop
        ((156, 400), (0.0, 0.0)),  # integer factor: cv2's integer fast path
        ((720, 1280), (0.3, 0.2)),
        ((60, 150), (0.0, 0.0)),  # grow: cv2's bilinear-like emulation of INTER_AREA
        ((300, 100), (0.0, 0.0)),  # shrink one axis, grow the other
        ((60, 200), (0.0, 0.0)),  # the row cv2 rounds one pixel early (60 -> 78)
    ],
)
def test_torch_matches_cv2_within_one_grey_level(size_hw, crop):
    images = _images(2, *size_hw, seed=1)
    contract = PreprocessContract(crop_top_frac=crop[0], crop_bottom_frac=crop[1])
    cv = preprocess_u8(images, contract).astype(int)
    th = preprocess_torch(torch.from_numpy(images), contract)
    assert th.dtype == torch.uint8 and th.shape == (2, 78, 200, 3)
    diff = np.abs(cv - th.numpy().astype(int))
    assert diff.max() <= 1
    assert (diff > 0).mean() < 0.2  # off-by-one only where rounding sits on a half


@settings(max_examples=15, deadline=None)
@given(h=st.integers(8, 240), w=st.integers(8, 320), top=st.floats(0, 0.4), bottom=st.floats(0, 0.4))
def test_torch_matches_cv2_for_any_camera(h, w, top, bottom):
    contract = PreprocessContract(out_height=13, out_width=31, crop_top_frac=top, crop_bottom_frac=bottom)
    images = _images(1, h, w, seed=h * w)
    cv = preprocess_u8(images, contract).astype(int)
    th = preprocess_torch(torch.from_numpy(images), contract).numpy().astype(int)
    assert np.abs(cv - th).max() <= 1


def test_torch_rejects_wrong_inputs():
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\) uint8"):
        preprocess_torch(torch.zeros(1, 78, 200, 3), PreprocessContract())
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\) uint8"):
        preprocess_torch(torch.zeros(78, 200, 3, dtype=torch.uint8), PreprocessContract())
    with pytest.raises(ValueError, match="torch.Tensor"):
        preprocess_torch(_images(1, 78, 200), PreprocessContract())


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_preprocess_module_exports_to_onnx_exactly(tmp_path):
    import onnxruntime as ort

    module = Preprocess(PreprocessContract(crop_top_frac=0.25, crop_bottom_frac=0.1)).eval()
    example = torch.from_numpy(_images(2, 120, 160))
    path = tmp_path / "preprocess.onnx"
    torch.onnx.export(
        module,
        (example,),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        output_names=["out"],
        dynamic_axes={"image": {0: "batch"}, "out": {0: "batch"}},
    )
    images = _images(3, 120, 160, seed=5)
    (onnx_out,) = ort.InferenceSession(str(path)).run(None, {"image": images})
    assert onnx_out.dtype == np.uint8
    assert np.array_equal(onnx_out, module(torch.from_numpy(images)).numpy())


def test_cv2_module_imports_no_torch():
    code = "import sys, perception.preprocess; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_torch_names_still_import_from_preprocess():
    from perception.preprocess import Preprocess as P
    from perception.preprocess import standardize as s

    assert P is Preprocess and s is standardize


# --- standardisation ------------------------------------------------------------------------------


def test_standardize_gives_zero_mean_unit_std_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 78, 200, generator=g)
    x[1] = x[1] * 0.1 + 0.7  # a dim, low-contrast image
    y = standardize(x)
    flat = y.flatten(1)
    torch.testing.assert_close(flat.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.std(1, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    # per image: changing one image does not change another's result
    x2 = x.clone()
    x2[0] = 1.0 - x2[0]
    torch.testing.assert_close(standardize(x2)[1:], y[1:])
    # invariant to brightness and contrast (positive affine maps)
    torch.testing.assert_close(standardize(0.5 * x + 0.2), y, atol=1e-4, rtol=0)


def test_standardize_matches_tensorflow_formula_and_survives_constant_images():
    x = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]]).expand(1, 3, 2, 2).contiguous()
    values = x.flatten().numpy().astype(np.float64)
    expected = (values - values.mean()) / max(values.std(), 1 / np.sqrt(values.size))
    np.testing.assert_allclose(standardize(x).flatten().numpy(), expected, rtol=1e-6)
    flat = torch.full((2, 3, 78, 200), 0.42)
    out = standardize(flat)
    assert torch.isfinite(out).all() and out.abs().max() < 1e-5


def test_camera_values_standardise_as_the_unit_image_including_the_floor():
    from perception.feature_net import camera_to_standardized

    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (2, 78, 200, 3), generator=g, dtype=torch.uint8)
    images[1] = 100
    images[1, 0, 0, 0] = 101  # nearly constant: the floor max(std, 1/sqrt(N)) decides the divisor
    unit = images.to(torch.float32).div(255.0).permute(0, 3, 1, 2)
    raw, scaled = camera_to_standardized(images), standardize(unit)
    torch.testing.assert_close(raw[0], scaled[0], atol=1e-5, rtol=0)
    # Nearly constant: x/255 rounds each value before the mean is subtracted (cancellation), the raw
    # values do not; the two agree to the scaled path's own rounding.
    torch.testing.assert_close(raw[1], scaled[1], atol=1e-4, rtol=0)
    assert camera_to_standardized(images)[1].abs().max() < 1.0  # the floor held (no blow-up to ~216)


def test_standardize_rejects_integers():
    with pytest.raises(ValueError, match="float"):
        standardize(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
