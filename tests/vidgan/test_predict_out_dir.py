"""`vidgan predict --data test.npy --out-dir DIR`: every predicted clip as .npy and mp4, read back."""

import json

import cv2
import numpy as np
import pytest
import torch
from fixtures_eval import TINY, moving_mnist_like, tiny_checkpoint

from vidgan.cli import main
from vidgan.commands.evaluate import SEED_STRIDE
from vidgan.predictor import FramePredictor

TC, TF = TINY["context_frames"], TINY["future_frames"]


def decode(path) -> np.ndarray:
    """All frames (T, H, W, 3) of a video, with OpenCV (decord refuses 16 x 16 H.264)."""
    capture, frames = cv2.VideoCapture(str(path)), []
    while (frame := capture.read())[0]:
        frames.append(frame[1][..., ::-1])  # BGR -> RGB
    capture.release()
    return np.stack(frames)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict_out_dir")
    return {
        "ckpt": tiny_checkpoint(root / "tiny.ckpt"),
        "test": moving_mnist_like(root / "mnist" / "test.npy", sequences=5),
    }


def test_every_predicted_clip_is_written_as_npy_and_mp4(files, tmp_path, capsys):
    out = tmp_path / "pred"
    argv = ["predict", "--ckpt_path", str(files["ckpt"]), "--data", str(files["test"]), "--out-dir", str(out)]
    assert main([*argv, "--samples", "2", "--batch-size", "2", "--seed", "3", "--quiet"]) == 0
    assert "wrote 10 predicted clips of 5 sequences" in capsys.readouterr().out
    predictions, real = np.load(out / "predictions.npy"), np.load(out / "real.npy")
    assert predictions.shape == (5, 2, TC + TF, 16, 16, 1) and predictions.dtype == np.uint8
    # real.npy is the test file's clips, (T, N, H, W) -> (N, T, H, W, 1).
    np.testing.assert_array_equal(real, np.load(files["test"]).transpose(1, 0, 2, 3)[..., None])
    np.testing.assert_array_equal(predictions[:, :, :TC], np.repeat(real[:, None, :TC], 2, axis=1))
    # The futures are FramePredictor's with vidgan eval's seeds: batch i of seed 3 uses 3 * 1000003 + i.
    predictor = FramePredictor.from_checkpoint(files["ckpt"], device="cpu")
    context = torch.from_numpy(real[:, :TC]).permute(0, 1, 4, 2, 3).float() / 255  # (N, Tc, 1, H, W)
    for index, start in enumerate(range(0, 5, 2)):
        pred = predictor.predict(context[start : start + 2], TF, num_samples=2, seed=3 * SEED_STRIDE + index)
        expected = (pred * 255).round().to(torch.uint8).permute(0, 1, 2, 4, 5, 3).numpy()
        np.testing.assert_array_equal(predictions[start : start + 2, :, TC:], expected)
    meta = json.loads((out / "clips.json").read_text())
    assert (meta["sequences"], meta["samples"], meta["context_frames"], meta["future_frames"]) == (
        5,
        2,
        TC,
        TF,
    )
    videos = sorted((out / "videos").glob("*.mp4"))
    assert [v.name for v in videos] == [f"{n:06d}_{s}.mp4" for n in range(5) for s in range(2)]
    frames = decode(out / "videos" / "000003_1.mp4")  # (T, H, W, 3), grey shown as RGB
    assert frames.shape == (TC + TF, 16, 16, 3)
    assert np.abs(frames.astype(float) - predictions[3, 1].astype(float)).mean() < 8  # one lossy encode


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "x.mp4"], "give --out-dir (not --out)"),
        (["--out-dir", "d", "--video", "in.mp4"], "give --video (one clip) or --data (a test set)"),
        (["--out-dir", "d", "--start", "2"], "--context-frames and --start apply to --video"),
        (["--out-dir", "d", "--max-sequences", "0"], "--max-sequences=0 must be >= 1"),
    ],
)
def test_bad_test_set_requests_are_one_line_errors(files, tmp_path, capsys, extra, message):
    argv = ["predict", "--ckpt_path", str(files["ckpt"]), "--data", str(files["test"]), "--quiet"]
    assert main([*argv, *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vidgan predict: error:") and message in err and len(err.splitlines()) == 1
