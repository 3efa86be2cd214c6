"""The bad-input matrix (issue 11 §5): one table of bad inputs through the public CLIs and APIs.

Every row ends in one of:
- an error: a non-zero exit code (1, or 2 for argument/config errors) with exactly one line
  `prog: error: ...` naming the culprit and no traceback (CLI rows), or one user-error exception
  whose one-line message names the culprit (API rows);
- a counted skip: the bad item is dropped, counted in `skipped`, and the rest is used;
- an accepted input with a documented conversion (exit 0).

CLI rows call the console scripts' `main(argv)` in this process (what `vidgan` / `t2i` / `ganforge`
run), except the rows marked `subprocess`, which run the installed scripts to check exit codes,
stderr and undecodable argv end to end. Checkpoints and files are made once per module (~2 s);
the table then takes ~35 s with OMP_NUM_THREADS=1, 2/3 of it in the two subprocess rows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS / "vidgan"), str(TESTS / "t2i")]  # fixtures_eval, vidgan_clips, image_testing

from fixtures_eval import TINY, tiny_checkpoint  # noqa: E402
from image_testing import CLASSES, TEXT, TINY_IMAGE, save_stage, save_tiny_layout_stage  # noqa: E402

from ganforge.errors import USER_ERRORS  # noqa: E402
from ganforge.media_files import write_clip  # noqa: E402
from vidgan.module import VideoGAN  # noqa: E402

BIN = Path(sys.executable).parent
ROOT = TESTS.parent
VIDGAN_TINY = ROOT / "configs" / "vidgan" / "moving_mnist_tiny.yaml"
T2I_TINY = ROOT / "configs" / "t2i" / "shapes_image_tiny.yaml"
QUIET = [
    "--trainer.logger=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


# ---------------------------------------------------------------------------------------- files
def t2i_checkpoint(folder: Path) -> Path:
    from t2i.image_stage import ImageGAN

    torch.manual_seed(0)
    save_tiny_layout_stage(folder / "layout.ckpt")
    image = ImageGAN(CLASSES, **TINY_IMAGE, layout_checkpoint="layout.ckpt", **TEXT)
    return save_stage(image, folder / "image.ckpt")


def coco_folders(folder: Path) -> dict[str, Path]:
    """A rendered shapes set, a copy whose instances JSON lacks `annotations`, one with a missing image."""
    from t2i.data.shapes_scenes import ShapesSpec, render_shapes

    good = render_shapes(folder / "shapes", ShapesSpec(train=4, val=4, size=32, seed=0))
    no_annotations = shutil.copytree(good, folder / "no_annotations")
    instances = no_annotations / "annotations" / "instances_val.json"
    data = json.loads(instances.read_text())
    del data["annotations"]
    instances.write_text(json.dumps(data))
    missing_image = shutil.copytree(good, folder / "missing_image")
    first = json.loads((missing_image / "annotations" / "instances_val.json").read_text())["images"][0]
    (missing_image / "images" / "val" / first["file_name"]).unlink()
    return {"coco": good, "coco_no_annotations": no_annotations, "coco_missing_image": missing_image}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_inputs")
    vid = tiny_checkpoint(root / "vidgan.ckpt")  # 16x16, 1 channel, 2 context -> 3 future frames
    truncated = root / "truncated.ckpt"
    truncated.write_bytes(vid.read_bytes()[: vid.stat().st_size // 2])
    (root / "ckpt_dir").mkdir()
    (root / "notes.ckpt").write_text("not a checkpoint\n")
    frames = np.zeros((8, 16, 16, 3), np.uint8)
    frames[:, 4:10, 4:10] = 255
    write_clip(frames, root / "clip.mp4", fps=8)
    write_clip(frames[:1], root / "one_frame.mp4", fps=8)
    corrupt = root / "corrupt_videos"
    corrupt.mkdir()
    (corrupt / "text.mp4").write_text("this is not a video\n")
    (corrupt / "empty.mp4").write_bytes(b"")
    (corrupt / "cut.mp4").write_bytes((root / "clip.mp4").read_bytes()[:200])
    return {
        "root": root,
        "vid_ckpt": vid,
        "vid_rgb_ckpt": save_stage(VideoGAN(**{**TINY, "channels": 3}), root / "rgb.ckpt"),  # untrained
        "t2i_ckpt": t2i_checkpoint(root),
        "truncated": truncated,
        "ckpt_dir": root / "ckpt_dir",
        "text_ckpt": root / "notes.ckpt",
        "video": root / "clip.mp4",
        "short_video": root / "one_frame.mp4",
        "corrupt_videos": corrupt,
        **coco_folders(root),
    }


# ---------------------------------------------------------------------------------------- outcomes
@dataclass
class Outcome:
    code: int  # exit code; API rows: 1 for a user error, 0 when the call returned
    message: str  # the error line (CLI: the `prog: error:` line; API: the exception's message)
    stderr: str = ""
    skipped: int = 0  # items skipped and counted (skip rows)


def cli(main: Callable[[list[str]], int], argv: list[str], capfd: pytest.CaptureFixture) -> Outcome:
    capfd.readouterr()
    code = main(argv)
    err = capfd.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    return Outcome(code, errors[-1] if errors else "", err)


def script(argv: list[str | bytes]) -> Outcome:
    """Run an installed console script; argv items may be bytes (not valid UTF-8)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("GANFORGE_DEBUG", None)
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=300)
    err = proc.stderr.decode("utf-8", "replace")
    errors = [line for line in err.splitlines() if ": error: " in line]
    return Outcome(proc.returncode, errors[-1] if errors else "", err)


def api(call: Callable[[], object]) -> Outcome:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
    except USER_ERRORS as err:
        return Outcome(1, str(err))
    skipped = getattr(result, "skipped", ())  # Counter (reason -> n) for COCO, a list for videos
    skipped = sum(skipped.values()) if isinstance(skipped, dict) else len(skipped)
    return Outcome(0, "", skipped=skipped)


def ganforge_main(argv: list[str]) -> int:
    from ganforge.cli import main

    return main(argv)


def vidgan_main(argv: list[str]) -> int:
    from vidgan.cli import main

    return main(argv)


def t2i_main(argv: list[str]) -> int:
    from t2i.cli import main

    return main(argv)


def predict_args(f: dict[str, Path], **changes: object) -> list[str]:
    args = {"--ckpt_path": f["vid_ckpt"], "--video": f["video"], "--out": f["root"] / "pred.gif"}
    args |= changes
    flat = ["predict", "--quiet", "--device", "cpu"]
    for key, value in args.items():
        flat += [key, str(value)]
    return flat


def generate_args(
    f: dict[str, Path], caption: str, ckpt: Path | None = None, out: Path | None = None
) -> list[str]:
    out = out or f["root"] / "gen.png"
    return [
        "generate",
        "--ckpt_path",
        str(ckpt or f["t2i_ckpt"]),
        caption,
        "--out",
        str(out),
        "--device",
        "cpu",
    ]


def fit_vidgan(f: dict[str, Path], config: Path, *extra: str) -> list[str]:
    return ["fit", "--config", str(config), *QUIET, f"--trainer.default_root_dir={f['root'] / 'fit'}", *extra]


def config_file(f: dict[str, Path], name: str, text: str) -> Path:
    path = f["root"] / name
    path.write_text(VIDGAN_TINY.read_text() + text)
    return path


# ---------------------------------------------------------------------------------------- the table
@dataclass
class Row:
    name: str
    run: Callable[[dict[str, Path], pytest.CaptureFixture], Outcome]
    code: int  # expected exit code (0: accepted or skipped)
    culprit: str = ""  # text the error line must contain (the file, field or value at fault)
    skipped: int = 0  # expected count of skipped items


def _frame_predictor(ckpt: Path):
    from vidgan import FramePredictor

    return FramePredictor.from_checkpoint(ckpt, device="cpu")


def _text_to_image(ckpt: Path):
    from t2i import TextToImage

    return TextToImage.from_checkpoint(ckpt, device="cpu")


def _grey_to_rgb(f: dict[str, Path]) -> object:
    grey = np.zeros((4, 16, 16, 1), np.uint8)
    out = _frame_predictor(f["vid_rgb_ckpt"]).predict(grey, future_frames=2, num_samples=1, seed=0)
    assert out.shape == (1, 2, 16, 16, 1)  # predicted in RGB, returned as grey like the input
    return out


def _long_caption(f: dict[str, Path]) -> object:
    with pytest.warns(UserWarning, match="truncat"):
        out = _text_to_image(f["t2i_ckpt"]).generate(["a red circle " * 770], num_samples=1, seed=0)
    assert out.images.shape == (1, 1, 3, 32, 32)
    return out


def _coco(folder: Path):
    from t2i.data.coco import CocoLayoutDataset

    return CocoLayoutDataset(
        folder / "images" / "val",
        folder / "annotations" / "instances_val.json",
        folder / "annotations" / "captions_val.json",
        image_size=32,
    )


def _videos(folder: Path):
    from vidgan.data import VideoFolderDataset

    return VideoFolderDataset(folder, context_frames=2, future_frames=3, image_size=16, channels=3)


def _good_and_corrupt_videos(f: dict[str, Path]) -> object:
    folder = f["root"] / "mixed_videos"
    if not folder.exists():
        shutil.copytree(f["corrupt_videos"], folder)
        shutil.copy(f["video"], folder / "good.mp4")
    return _videos(folder)


def unknown_key(f, c):
    return script([str(BIN / "vidgan"), *fit_vidgan(f, config_file(f, "unknown.yaml", "colour: red\n"))])


def wrong_type(f, c):
    return cli(vidgan_main, fit_vidgan(f, VIDGAN_TINY, "--data.batch_size=eight"), c)


def missing_data_vidgan(f, c):
    return cli(vidgan_main, fit_vidgan(f, VIDGAN_TINY, f"--data.data_dir={f['root'] / 'nowhere'}"), c)


def missing_data_t2i(f, c):
    data = [f"--data.init_args.data_dir={f['root'] / 'no_coco'}", "--data.init_args.shapes=null"]
    argv = ["fit", "--config", str(T2I_TINY), *QUIET, "--model.init_args.clip_path=null", *data]
    return cli(t2i_main, [*argv, f"--trainer.default_root_dir={f['root'] / 'fit'}"], c)


def corrupt_folder(f, c):
    data = ["--data=vidgan.data.VideoFolderDataModule", f"--data.data_dir={f['corrupt_videos']}"]
    return cli(vidgan_main, fit_vidgan(f, VIDGAN_TINY, *data), c)


def flag(name: str) -> str:
    """The flag of a keyword: `--ckpt_path` is spelled as Lightning's, every other flag with hyphens."""
    return "--ckpt_path" if name == "ckpt_path" else f"--{name.replace('_', '-')}"


def predict_cli(**changes):
    return lambda f, c: cli(vidgan_main, predict_args(f, **{flag(k): v for k, v in changes.items()}), c)


def predict_api(frames: int, **kwargs):
    context = np.zeros((frames, 16, 16, 1), np.uint8)
    return lambda f, c: api(lambda: _frame_predictor(f["vid_ckpt"]).predict(context, **kwargs))


def undecodable_caption(f, c):
    argv = generate_args(f, "")
    return script([str(BIN / "t2i"), *argv[:3], b"a red \xff\xfe circle", *argv[4:]])


def caption_bytes(f, c):
    return api(lambda: _text_to_image(f["t2i_ckpt"]).generate([b"a red circle"]))


def ring_out_under_file(f, c):
    return cli(ganforge_main, ["ring", "--quiet", "--steps=1", f"--out={f['text_ckpt'] / 'ring'}"], c)


def generate_out(f, c):
    return cli(t2i_main, generate_args(f, "a red circle", out=f["root"] / "new2" / "gen.png"), c)


ROWS = [
    # -- configs
    Row("config unknown key [subprocess]", unknown_key, 2, "colour"),
    Row("config wrong type", wrong_type, 2, "batch_size"),
    Row("config missing data path (vidgan)", missing_data_vidgan, 1, "nowhere"),
    Row("config missing data path (t2i)", missing_data_t2i, 1, "no_coco"),
    # -- videos
    Row("video folder of only corrupt files", corrupt_folder, 1, "corrupt_videos"),
    Row("corrupt videos beside a good one", lambda f, c: api(lambda: _good_and_corrupt_videos(f)), 0,
        skipped=3),
    Row("video shorter than the context", lambda f, c: predict_cli(video=f["short_video"])(f, c), 1,
        "one_frame.mp4' has 1 frames, fewer than the 2 context frames"),
    Row("grey video to an RGB model", lambda f, c: api(lambda: _grey_to_rgb(f)), 0),
    Row("predict --context-frames 0", predict_cli(context_frames=0), 1, "--context-frames=0"),
    Row("predict --future-frames -2", predict_cli(future_frames=-2), 1, "--future-frames=-2"),
    Row("FramePredictor 0 context frames", predict_api(0), 1, "T=0"),
    Row("FramePredictor negative future frames", predict_api(2, future_frames=-1), 1, "future_frames=-1"),
    # -- captions
    Row("caption empty", lambda f, c: cli(t2i_main, generate_args(f, " "), c), 1, "caption 0 is empty"),
    Row("caption 10,000 characters", lambda f, c: api(lambda: _long_caption(f)), 0),
    Row("caption non-UTF-8 bytes [subprocess]", undecodable_caption, 1, "caption 0 is not valid UTF-8"),
    Row("TextToImage caption bytes", caption_bytes, 1, "caption 0 is bytes"),
    # -- COCO
    Row("COCO JSON without annotations", lambda f, c: api(lambda: _coco(f["coco_no_annotations"])), 1,
        "no 'annotations' list"),
    Row("COCO image missing on disk", lambda f, c: api(lambda: _coco(f["coco_missing_image"])), 0, skipped=1),
    # -- checkpoints
    Row("--ckpt_path a directory", lambda f, c: predict_cli(ckpt_path=f["ckpt_dir"])(f, c), 1,
        "is a directory"),
    Row("--ckpt_path a text file", lambda f, c: cli(t2i_main, generate_args(f, "red", f["text_ckpt"]), c), 1,
        "notes.ckpt' is not a readable torch checkpoint"),
    Row("--ckpt_path truncated", lambda f, c: predict_cli(ckpt_path=f["truncated"])(f, c), 1,
        "truncated.ckpt' is not a readable torch checkpoint"),
    # -- outputs
    Row("--out in a missing folder (vidgan predict)",
        lambda f, c: predict_cli(out=f["root"] / "new" / "sub" / "pred.gif")(f, c), 0),
    Row("--out in a missing folder (t2i generate)", generate_out, 0),
    Row("--out under a regular file", lambda f, c: predict_cli(out=f["text_ckpt"] / "pred.gif")(f, c), 1,
        "notes.ckpt"),
    Row("ganforge ring --out under a regular file", ring_out_under_file, 1, "Not a directory: '"),
    Row("ganforge ring --steps 0", lambda f, c: cli(ganforge_main, ["ring", "--steps=0", "--out=x"], c), 2,
        "--steps=0 must be >= 1"),
]  # fmt: skip
OUTPUTS = {
    "--out in a missing folder (vidgan predict)": "new/sub/pred.gif",
    "--out in a missing folder (t2i generate)": "new2/gen.png",
}


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_bad_input(row: Row, files: dict[str, Path], capfd: pytest.CaptureFixture) -> None:
    outcome = row.run(files, capfd)
    print(f"{row.name}: exit {outcome.code}, skipped {outcome.skipped}: {outcome.message}")  # shown with -s
    assert outcome.code == row.code, (
        f"{row.name}: exit {outcome.code}: {outcome.message or outcome.stderr[-1500:]}"
    )
    assert "Traceback" not in outcome.stderr, outcome.stderr[-3000:]
    if row.code != 0:
        assert "\n" not in outcome.message.strip() and outcome.message, outcome.stderr[-1500:]
        assert row.culprit in outcome.message, outcome.message
        errors = [line for line in outcome.stderr.splitlines() if ": error: " in line]
        assert len(errors) <= 1, outcome.stderr  # one error line, no repeated or wrapped causes
    assert outcome.skipped == row.skipped
    if row.name in OUTPUTS:
        assert (files["root"] / OUTPUTS[row.name]).is_file()
