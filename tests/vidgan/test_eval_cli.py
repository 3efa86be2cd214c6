"""`vidgan eval` (FVD via a TorchScript I3D stand-in; else fd_local) and `vidgan predict`, end to end."""

import json

import decord
import numpy as np
import pytest
import torch
from fixtures_eval import TINY, moving_mnist_like, tiny_checkpoint
from PIL import Image
from torch import Tensor

from ganforge.metrics import FrechetDistance
from vidgan.cli import main
from vidgan.predictor import FramePredictor

TC, TF = TINY["context_frames"], TINY["future_frames"]
# The I3D file format is TorchScript; torch 2.14 warns that scripting and loading it are deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*deprecated:FutureWarning")


class TinyI3D(torch.nn.Module):
    """The StyleGAN-V `i3d_torchscript.pt` call signature, with 8 cheap features instead of I3D's 400.

    Like the real export it takes uint8 videos (B, 3, T, H, W); it refuses any other call than the
    one FVD makes (rescale, resize and return_features all on).
    """

    def forward(self, x: Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
        if x.dtype != torch.uint8 or x.dim() != 5 or x.shape[1] != 3:
            raise RuntimeError("expected uint8 videos (B, 3, T, H, W)")
        if not (rescale and resize and return_features):
            raise RuntimeError("FVD calls the detector with rescale=True, resize=True, return_features=True")
        video = x.float().mean(dim=1, keepdim=True) / 127.5 - 1.0
        return torch.nn.functional.adaptive_avg_pool3d(video, [2, 2, 2]).flatten(1)  # (B, 8)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    i3d = root / "i3d_torchscript.pt"
    torch.jit.script(TinyI3D()).save(str(i3d))
    return {
        "ckpt": tiny_checkpoint(root / "tiny.ckpt"),
        "test": moving_mnist_like(root / "mnist" / "test.npy", sequences=6),
        "train": moving_mnist_like(root / "mnist" / "train.npy", sequences=12),
        "i3d": i3d,
    }


def run_eval(files, out, *extra):
    argv = [
        "eval",
        "--ckpt_path",
        str(files["ckpt"]),
        "--data",
        str(files["test"]),
        "--out",
        str(out),
        "--quiet",
    ]
    return main([*argv, *extra])


def test_eval_with_i3d_reports_fvd_of_context_plus_prediction_clips(files, tmp_path):
    out = tmp_path / "metrics.json"
    assert run_eval(files, out, "--i3d", str(files["i3d"]), "--samples", "2", "--batch-size", "6") == 0
    result = json.loads(out.read_text())
    assert "fd_local" not in result and result["fvd_details"]["real_clips"] == 6
    assert result["fvd_details"]["generated_clips"] == 12 and result["fvd_details"]["clip_frames"] == TC + TF
    for aggregate in ("mean_of_samples", "best_of_samples"):
        assert set(result["per_step"][aggregate]) == {"mse", "mae", "psnr", "ssim"}
        assert all(len(curve) == TF for curve in result["per_step"][aggregate].values())
    means = result["mean"]
    assert means["best_of_samples"]["ssim"] >= means["mean_of_samples"]["ssim"]
    # The same distance by hand: the I3D's features of real vs context + predicted clips (batch 0, seed 0).
    videos = torch.from_numpy(np.load(files["test"])).permute(1, 0, 2, 3)[:, :, None].float() / 255
    context = videos[:, :TC]
    pred = FramePredictor.from_checkpoint(files["ckpt"]).predict(context, num_samples=2, seed=0)
    detector = torch.jit.load(str(files["i3d"]))
    features = lambda clips: detector(  # noqa: E731
        (clips * 255).round().to(torch.uint8).expand(-1, -1, 3, -1, -1).permute(0, 2, 1, 3, 4),
        rescale=True, resize=True, return_features=True,
    )  # fmt: skip
    expected = FrechetDistance(features)
    expected.update(videos, real=True)
    expected.update(
        torch.cat([context[:, None].expand(-1, 2, -1, -1, -1, -1), pred], dim=2).flatten(0, 1), False
    )
    assert result["fvd"] == pytest.approx(expected.compute(), rel=1e-6)
    with Image.open(out.with_suffix(".png")) as plot:
        assert plot.format == "PNG" and plot.width > 400


def test_eval_without_i3d_reports_fd_local_and_never_fvd(files, tmp_path, capsys):
    out = tmp_path / "run" / "metrics.json"
    assert run_eval(files, out, "--fd-steps", "5") == 0
    printed = capsys.readouterr().out
    assert "fd_local (not FVD)=" in printed and "fvd=" not in printed
    result = json.loads(out.read_text())
    assert "fvd" not in result and result["fd_local"] >= 0
    details = result["fd_local_details"]
    assert "Not FVD" in details["note"] and details["trained_here"]
    assert details["trained_on"] == str(files["train"])  # the sibling training split, not the test set
    # A second evaluation reuses the saved net, so the two distances are comparable (here: equal).
    assert (tmp_path / "run" / "fd_local_net.pt").is_file()
    assert run_eval(files, out, "--fd-steps", "5") == 0
    again = json.loads(out.read_text())
    assert not again["fd_local_details"]["trained_here"] and again["fd_local"] == pytest.approx(
        result["fd_local"]
    )


def test_eval_reads_a_folder_of_videos(files, tmp_path, make_video):
    for name in ("a", "b", "c"):
        make_video(tmp_path / "videos" / f"{name}.mp4", num_frames=12)  # RGB 64x48 -> grey 16x16 centre clips
    out = tmp_path / "metrics.json"
    argv = [
        "eval",
        "--ckpt_path",
        str(files["ckpt"]),
        "--data",
        str(tmp_path / "videos"),
        "--i3d",
        str(files["i3d"]),
    ]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert result["sequences"] == 3 and result["fvd_details"]["real_clips"] == 3
    assert all(len(curve) == TF for curve in result["per_step"]["mean_of_samples"].values())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--i3d", "nowhere/i3d_torchscript.pt"], "--i3d 'nowhere/i3d_torchscript.pt' does not exist"),
        (["--samples", "0"], "--samples=0 must be >= 1"),
        (["--data", "nowhere.npy"], "--data 'nowhere.npy' does not exist"),
    ],
)
def test_eval_input_errors_are_one_line(files, tmp_path, capsys, extra, message):
    assert run_eval(files, tmp_path / "metrics.json", *extra) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"vidgan eval: error: {err.split('error: ', 1)[1]}" and message in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "metrics.json").exists()


def test_predict_turns_an_ffmpeg_mp4_into_a_playable_mp4(files, tmp_path, make_video):
    source = make_video(tmp_path / "in.mp4", num_frames=24, height=48, width=64)  # (24, 48, 64, 3)
    out = tmp_path / "pred.mp4"
    argv = [
        "predict",
        "--ckpt_path",
        str(files["ckpt"]),
        "--video",
        str(tmp_path / "in.mp4"),
        "--context-frames",
        "4",
    ]
    assert main([*argv, "--future-frames", "5", "--samples", "2", "--out", str(out), "--quiet"]) == 0
    reader = decord.VideoReader(str(out))
    assert len(reader) == 4 + 5
    frames = reader.get_batch(list(range(9))).asnumpy()
    assert frames.shape == (9, 2 * 52, 52, 3)  # two sample rows of 48x48 centre crops with 2-pixel frames
    shown = frames[:4, 2:50, 2:50].astype(float)  # row 0 plays the last 4 input frames, centre-cropped
    assert np.abs(shown - source[-4:, :, 8:56]).mean() < 6  # two lossy encodes
    assert frames[0, 0, 26, 1] > 150 and frames[0, 0, 26, 0] < 100  # green frame: context
    assert frames[6, 0, 26, 0] > 150 and frames[6, 0, 26, 1] < 100  # red frame: prediction


def test_predict_writes_gif_from_start_frame_and_rejects_bad_requests(files, tmp_path, make_video, capsys):
    make_video(tmp_path / "in.mp4", num_frames=12)
    base = ["predict", "--ckpt_path", str(files["ckpt"]), "--video", str(tmp_path / "in.mp4"), "--quiet"]
    assert main([*base, "--start", "3", "--out", str(tmp_path / "p.gif")]) == 0
    with Image.open(tmp_path / "p.gif") as gif:
        assert gif.n_frames == TC + TF  # the model's Tc and Tf by default
    assert main([*base, "--start", "11", "--out", str(tmp_path / "late.mp4")]) == 1
    assert "has 12 frames; context frames 11..12 do not fit" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "p.avi")]) == 1
    assert "must end in .mp4 or .gif" in capsys.readouterr().err
