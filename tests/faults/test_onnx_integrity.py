"""ONNX integrity: bit-flipped weights are refused on load, naming the file; a contract value the
simulator does not match (an edited control rate) is refused instead of silently obeyed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from drive.cli import main
from drive.export.pipeline import export_policy
from drive.onboard.contract import MetaKey, ModelContractError, model_digest
from drive.onboard.runtime import OnboardPolicy
from policies.registry import build_policy


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    torch.manual_seed(0)
    policy = build_policy("ncp-ltc").eval()
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return export_policy(policy, out, parity_steps=4, split=True).paths


def _edited_metadata(path: Path, target: Path, key: str, value: str) -> Path:
    model = onnx.load(path)
    props = {p.key: p.value for p in model.metadata_props}
    props[key] = value
    del model.metadata_props[:]
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, target)
    return target


def _flip_a_weight_bit(path: Path, target: Path) -> Path:
    """`path` with one bit of one weight flipped in place in the file bytes (the protobuf stays valid)."""
    model = onnx.load(path)
    weights = max(
        (t for t in model.graph.initializer if len(t.raw_data) >= 64), key=lambda t: len(t.raw_data)
    )
    data = bytearray(path.read_bytes())
    at = bytes(data).find(weights.raw_data[:64])
    assert at >= 0
    data[at + 17] ^= 0x04  # a mantissa bit of one float: the graph still loads and runs
    target.write_bytes(bytes(data))
    return target


def test_every_export_records_the_digest_of_its_graph_and_weights(exported):
    for path in exported.values():
        meta = {p.key: p.value for p in onnx.load(path).metadata_props}
        assert meta[MetaKey.MODEL_DIGEST] == model_digest(path.read_bytes())


def test_bit_flipped_weights_are_refused_naming_the_file(exported, tmp_path):
    for name in ("full", "vision"):
        bad = _flip_a_weight_bit(exported[name], tmp_path / f"bad-{name}.onnx")
        import onnxruntime as ort

        ort.InferenceSession(str(bad), providers=["CPUExecutionProvider"])  # it would run
        with pytest.raises(ModelContractError, match=rf"{bad.name}: its graph or weights changed"):
            OnboardPolicy(bad)


def test_a_damaged_split_policy_graph_is_refused_naming_it(exported, tmp_path):
    folder = tmp_path / "split"
    folder.mkdir()
    for path in exported.values():
        (folder / path.name).write_bytes(path.read_bytes())
    policy_graph = folder / exported["policy"].name
    _flip_a_weight_bit(policy_graph, policy_graph)
    with pytest.raises(ModelContractError, match=rf"{policy_graph.name}: its graph or weights changed"):
        OnboardPolicy(folder / exported["vision"].name)


def test_metadata_edits_keep_the_digest_and_a_model_without_one_is_refused(exported, tmp_path):
    note = _edited_metadata(exported["full"], tmp_path / "note.onnx", MetaKey.EXPORTER, "someone else")
    OnboardPolicy(note)  # the digest covers graph and weights, not the metadata
    model = onnx.load(exported["full"])
    kept = [p for p in model.metadata_props if p.key != MetaKey.MODEL_DIGEST]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, tmp_path / "old.onnx")
    with pytest.raises(ModelContractError, match=rf"old\.onnx lacks metadata key '{MetaKey.MODEL_DIGEST}'"):
        OnboardPolicy(tmp_path / "old.onnx")


def test_an_edited_control_rate_is_refused_by_drive_onboard(exported, tmp_path, capsys):
    slow = _edited_metadata(exported["full"], tmp_path / "slow.onnx", MetaKey.CONTROL_RATE_HZ, "5.0")
    code = main(["onboard", "--model", str(slow), "--max-minutes", "0.05", "--track", "oval"])
    assert code == 2
    err = capsys.readouterr().err
    assert "slow.onnx" in err and "'control_rate_hz' = 5 Hz" in err and "20 Hz" in err
    assert (
        main(["onboard", "--model", str(exported["full"]), "--max-minutes", "0.05", "--track", "oval"]) == 0
    )


def test_the_digest_reader_refuses_malformed_bytes():
    with pytest.raises(ValueError, match="truncated"):
        model_digest(b"\x0a\x80")  # a length-delimited field whose length varint never ends
    assert model_digest(b"") == model_digest(b"\x72\x00")  # only metadata_props (field 14): skipped
    assert np.frombuffer(bytes.fromhex(model_digest(b"\x08\x07")), np.uint8).size == 32
