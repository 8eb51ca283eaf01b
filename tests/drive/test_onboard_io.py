"""Real I/O around the onboard runtime (issue 17): a generated video file in, command messages out on a
python-can virtual bus and on UDP over loopback; one message per frame, no sequence gaps, and the
watchdog's messages when a step overruns its deadline."""

from __future__ import annotations

import socket
import sys
import time

import cv2
import numpy as np
import pytest
import torch

from drive.cli import main as drive_main
from drive.export.parity import synthetic_frames
from drive.export.pipeline import export_policy
from drive.onboard.runtime import OnboardPolicy
from drive.onboard_io.camera import CameraSource
from drive.onboard_io.messages import CAN_ID, OVERRUN, STALL, VALID, decode, encode
from drive.onboard_io.outputs import UdpOutput, open_output
from drive.onboard_io.runner import run_onboard
from policies.driving_policy import PolicyConfig
from policies.registry import build_policy

FRAMES = 10
FPS = 20.0


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(name="ncp-ltc")).eval()
    policy.curvature_scale_1pm = 1.0  # untrained curvatures O(0.1) 1/m, visible in 1e-4 counts
    path = tmp_path_factory.mktemp("io") / "m.onnx"
    export_policy(policy, path, parity_steps=4)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A short MJPG video of the synthetic road at 20 fps, 2x the model's size (the reader resizes)."""
    path = tmp_path_factory.mktemp("io") / "road.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (400, 156))
    for rgb in synthetic_frames(FRAMES, 156, 400):
        writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
    writer.release()
    return path


class SlowOnce:
    """The policy, made to overrun on frame `slow_frame` by sleeping `sleep_s` (a forced overrun)."""

    def __init__(self, policy: OnboardPolicy, slow_frame: int, sleep_s: float) -> None:
        self.policy, self.slow_frame, self.sleep_s, self.calls = policy, slow_frame, sleep_s, 0
        self.elapsed: list[float | None] = []

    def act(self, image, elapsed_s=None):
        if self.calls == self.slow_frame:
            time.sleep(self.sleep_s)
        self.calls += 1
        self.elapsed.append(elapsed_s)
        return self.policy.act(image, elapsed_s)


def test_layout_round_trips_and_saturates():
    payload = encode(0.01234, VALID, 257, 2**32 + 5)
    assert len(payload) == 8
    m = decode(payload)
    assert (m.curvature_1pm, m.flags, m.sequence, m.timestamp_ms) == (pytest.approx(0.0123), VALID, 1, 5)
    assert decode(encode(9.0, VALID, 0, 0)).curvature_1pm == pytest.approx(3.2767)
    assert payload[:2] == (123).to_bytes(2, "little", signed=True)
    with pytest.raises(ValueError, match="8 bytes"):
        decode(b"\x00" * 7)


def test_video_file_plays_at_its_frame_times(video):
    frames = list(CameraSource(str(video), 78, 200, realtime=False))
    assert len(frames) == FRAMES
    assert frames[0].image.shape == (78, 200, 3) and frames[0].image.dtype == np.uint8
    np.testing.assert_allclose(np.diff([f.time_s for f in frames]), 1 / FPS, atol=1e-3)
    with pytest.raises(ValueError, match="cannot open"):
        CameraSource(str(video) + ".missing", 78, 200)


def test_video_to_can_bus_one_message_per_frame_and_watchdog_on_overrun(model, video):
    can = pytest.importorskip("can", reason="python-can: pip install -e '.[car]'")
    channel = f"i17-{time.monotonic_ns()}"
    receiver = can.Bus(interface="virtual", channel=channel)
    output = open_output(f"can:{channel}", can_interface="virtual")
    slow = SlowOnce(OnboardPolicy(model), slow_frame=4, sleep_s=0.3)
    try:
        source = CameraSource(str(video), 78, 200, realtime=False)
        result = run_onboard(slow, source, output, deadline_s=0.1, stall_timeout_s=0.12)
    finally:
        output.close()
    received = []
    while (msg := receiver.recv(timeout=0.2)) is not None:
        received.append(msg)
    receiver.shutdown()
    assert all(m.arbitration_id == CAN_ID and m.dlc == 8 and not m.is_extended_id for m in received)
    messages = [decode(bytes(m.data)) for m in received]
    sequence = [m.sequence for m in messages]
    assert sequence == [i % 256 for i in range(len(messages))]  # no gaps, in order
    per_frame = [m for m in messages if m.flags & (VALID | OVERRUN)]
    assert len(per_frame) == FRAMES == result.frames
    assert [bool(m.flags & OVERRUN) for m in per_frame] == [i == 4 for i in range(FRAMES)]
    assert per_frame[4].curvature_1pm == 0.0 and not per_frame[4].valid
    stalls = [m for m in messages if m.flags == STALL]
    assert stalls and all(m.curvature_1pm == 0.0 for m in stalls)  # the watchdog spoke during the overrun
    assert result.messages == {"valid": FRAMES - 1, "overrun": 1, "stall": len(stalls)}
    assert result.deadline["deadline_misses"] == 1 and result.deadline["model_calls"] == FRAMES
    # The valid messages carry the policy's curvatures, fed the video's frame times as elapsed time.
    reference = OnboardPolicy(model)
    frames = list(CameraSource(str(video), 78, 200, realtime=False))
    want = [reference.act(f.image, e) for f, e in zip(frames, slow.elapsed)]
    assert slow.elapsed[0] is None and slow.elapsed[1] == pytest.approx(1 / FPS, abs=1e-3)
    for i, m in enumerate(per_frame):
        if i != 4:
            assert m.curvature_1pm == pytest.approx(want[i], abs=1e-4)
    assert np.all(np.diff([m.timestamp_ms for m in messages]) >= 0)


def test_udp_on_loopback_carries_the_same_bytes(model, video):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2.0)
    output = UdpOutput("127.0.0.1", receiver.getsockname()[1])
    try:
        source = CameraSource(str(video), 78, 200, realtime=False)
        result = run_onboard(OnboardPolicy(model), source, output, deadline_s=1.0, max_frames=5)
        payloads = [receiver.recv(64) for _ in range(5)]
    finally:
        output.close()
        receiver.close()
    assert result.frames == 5
    messages = [decode(p) for p in payloads]
    assert [m.sequence for m in messages] == [0, 1, 2, 3, 4]
    assert all(m.valid for m in messages)


def test_cli_plays_a_video_to_stdout_and_rejects_bad_outputs(model, video, capsys):
    code = drive_main(
        ["onboard", "--model", str(model), "--camera", str(video), "--output", "stdout", "--no-realtime"]
    )
    assert code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == FRAMES
    assert (
        drive_main(["onboard", "--model", str(model), "--camera", str(video), "--output", "udp:nohost"]) == 2
    )
    assert "udp:HOST:PORT" in capsys.readouterr().err


def test_cli_says_in_one_line_when_can_is_missing_or_cannot_open(model, video, capsys, monkeypatch):
    pytest.importorskip("can", reason="python-can: pip install -e '.[car]'")
    base = ["onboard", "--model", str(model), "--camera", str(video), "--no-realtime"]
    assert drive_main([*base, "--output", "can:i17nosuch0"]) == 2  # no such socketcan device here
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "can:i17nosuch0" in err[0] and "cannot open" in err[0]
    monkeypatch.setitem(sys.modules, "can", None)  # as if python-can were not installed
    assert drive_main([*base, "--output", "can:vcan0", "--can-interface", "virtual"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install -e '.[car]'" in err[0]
