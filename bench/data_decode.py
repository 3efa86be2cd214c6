"""Clip loading speed: decord vs opencv vs raw `ffmpeg -benchmark -f null`, and vs a vidgan training step.

Run: `python bench/data_decode.py` (4-8 minutes on 2 cores; run it alone). Writes
bench/results/data_decode.json.

Files follow BENCH-NOTES: 300 frames of `testsrc` at 30 fps, libx264 defaults (keyframe interval
250), yuv420p, at 64x64 and 256x256. One clip is T=20 frames at stride 1 (Moving MNIST's 10 -> 10)
from a seeded random start, so reaching it means decoding from the preceding keyframe. The same
clip list is decoded by:
- decord and opencv through `vidgan.data.video_reader.read_frames` (open + seek + decode, RGB uint8);
- decord with one reader reused for all clips of a run (decode cost without per-clip opening);
- ffmpeg, one `ffmpeg -benchmark -threads 1 -ss START -i FILE -frames:v 20 -f null -` per clip. Its
  `rtime` (1 ms resolution) excludes process start-up and opening the input, which decord and
  opencv pay per clip;
- the full dataset path: `VideoFolderDataset[i]` (decode, centre crop, resize to 64, float).
Whole-file decode rates (as in BENCH-NOTES) are reported too. Every figure is the median, min and
max over RUNS runs after one warm-up. Decoders and torch use one thread, as in a DataLoader worker
(PyTorch sets one thread per worker; with two threads on a busy 2-core machine, the dataset's tiny
float conversions alone took ~20 ms per clip).

**Training order.** TRAIN_FILES copies of the same file in class folders, read in the order a
training epoch asks for clips: `ResumableSampler(shuffle=True, fresh_each_epoch=True)` over
`VideoFolderDataset`, TRAIN_EPOCHS epochs, so every file is visited once per epoch in a shuffled
order and each visit draws a new start. The same (file, start) list is decoded by decord and opencv,
each opening the file per clip and through a `ReaderCache` of 8 open readers (its hit rate is
recorded), and by ffmpeg; the sides alternate within each of TRAIN_RUNS runs. A DataLoader with
LOADER_WORKERS workers then serves whole dataset items (decode, crop, resize, float) in that order.

The default backend (`backend: "auto"`, `resolve_backends("auto")[0]`: opencv) is what a config
without a `backend` line reads with; the goals name it and its training-order ratio to ffmpeg
(`training_order_default_vs_ffmpeg`, goal >= 0.8 at 64 and 256 px). The load average before and
after the run is recorded: on a shared machine, read the ratios rather than the rates.

The consumer rate is one vidgan training step (2 D steps + 1 G step) of `vidgan.module.VideoGAN`
at 64x64, 10 -> 10 frames, 3 channels, measured at batch CONSUMER_BATCH and scaled to batch 16
(conv cost grows linearly with the batch). Without vidgan.module a stand-in conv GAN is timed
instead, and the json says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import decord
import numpy as np
import torch
from stats import summary
from torch import nn

from ganforge.resumable import ResumableSampler
from vidgan.data.video_folder import VideoFolderDataset
from vidgan.data.video_reader import ReaderCache, read_frames, resolve_backends

RUNS = 5
FRAMES, FPS = 300, 30
CLIP, CLIPS_PER_RUN = 20, 32
SIZES = (64, 256)
CONSUMER_BATCH, TRAIN_BATCH = 2, 16
TRAIN_FILES, TRAIN_EPOCHS, TRAIN_RUNS, OPEN_READERS = 32, 2, 3, 8
LOADER_WORKERS, LOADER_BATCH = 2, 8
OUT = Path(__file__).parent / "results" / "data_decode.json"
GPU_STEP = Path(__file__).parent / "results" / "gpu_step.json"


def timed_runs(fn, runs: int | None = None) -> list[float]:
    """Seconds of fn(run) for run = 1..runs (default RUNS), after the warm-up fn(0)."""
    runs = RUNS if runs is None else runs
    fn(0)
    times = []
    for run in range(1, runs + 1):
        start = time.perf_counter()
        fn(run)
        times.append(time.perf_counter() - start)
    return times


def rates(count: int, seconds: list[float]) -> dict[str, float]:
    """count items per second: median, min, max (min rate from the slowest run)."""
    return summary([count / s for s in seconds])


def write_testsrc(path: Path, size: int) -> None:
    src = f"testsrc=size={size}x{size}:rate={FPS}"
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src, "-frames:v", str(FRAMES)]
    subprocess.run([*cmd, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)


def ffmpeg_rtime(args: list[str]) -> float:
    """ffmpeg's own `-benchmark` real time (s) of the decode, excluding start-up and input opening."""
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-benchmark", *args, "-f", "null", "-"], capture_output=True, text=True
    )
    match = re.search(r"rtime=([0-9.]+)s", out.stderr)
    if out.returncode != 0 or match is None:
        raise RuntimeError(f"ffmpeg failed: {out.stderr[-300:]}")
    return float(match.group(1))


def clip_starts(seed: int) -> list[int]:
    return np.random.default_rng(seed).integers(0, FRAMES - CLIP + 1, CLIPS_PER_RUN).tolist()


def bench_size(path: Path, size: int) -> dict:
    starts = [clip_starts(run) for run in range(RUNS + 1)]  # run 0 is the warm-up

    def clip_loop(backend: str, run: int) -> None:
        for start in starts[run]:
            read_frames(path, range(start, start + CLIP), backend)

    result = {"video": f"{size}x{size}, {FRAMES} frames, libx264 defaults", "clip": f"T={CLIP}, stride 1"}
    for backend in ("decord", "opencv"):
        seconds = timed_runs(lambda run, b=backend: clip_loop(b, run))
        result[f"{backend}_clips_per_s"] = rates(CLIPS_PER_RUN, seconds)

    def decord_decode_only(run: int) -> None:  # one reader per run: decoding without per-clip opening
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        for start in starts[run]:
            reader.get_batch(list(range(start, start + CLIP))).asnumpy()

    result["decord_reused_reader_clips_per_s"] = rates(CLIPS_PER_RUN, timed_runs(decord_decode_only))

    ffmpeg_clip_s = []
    for run in range(1, RUNS + 1):  # same clip lists as decord's and opencv's timed runs
        ffmpeg_clip_s.append(
            sum(
                ffmpeg_rtime(
                    ["-threads", "1", "-ss", f"{start / FPS:.6f}", "-i", str(path), "-frames:v", str(CLIP)]
                )
                for start in starts[run]
            )
        )
    result["ffmpeg_clips_per_s"] = rates(CLIPS_PER_RUN, ffmpeg_clip_s)

    dataset = VideoFolderDataset(  # a file opened per clip, as in training order (see below)
        path.parent, CLIP // 2, CLIP // 2, image_size=64, temporal_start="random", seed=0, open_readers=0
    )
    result["dataset_item_clips_per_s"] = rates(
        CLIPS_PER_RUN, timed_runs(lambda run: [dataset[0] for _ in range(CLIPS_PER_RUN)])
    )

    def decord_all(run: int) -> None:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        reader.get_batch(list(range(FRAMES))).asnumpy()

    result["whole_file_fps"] = {
        "decord_1_thread": rates(FRAMES, timed_runs(decord_all)),
        "ffmpeg_1_thread": rates(
            FRAMES, [ffmpeg_rtime(["-threads", "1", "-i", str(path)]) for _ in range(RUNS)]
        ),
        "ffmpeg_default_threads": rates(FRAMES, [ffmpeg_rtime(["-i", str(path)]) for _ in range(RUNS)]),
    }
    ffmpeg = result["ffmpeg_clips_per_s"]["median"]
    result["decord_vs_ffmpeg_clips"] = result["decord_clips_per_s"]["median"] / ffmpeg
    result["decord_reused_reader_vs_ffmpeg_clips"] = (
        result["decord_reused_reader_clips_per_s"]["median"] / ffmpeg
    )
    return result


# ---------------------------------------------------------------------------------------- training order
def training_clips(dataset: VideoFolderDataset) -> list[tuple[Path, int]]:
    """(file, clip start) in the order TRAIN_EPOCHS training epochs read them."""
    sampler = ResumableSampler(dataset, shuffle=True, seed=0, fresh_each_epoch=True)
    clips = []
    for epoch in range(TRAIN_EPOCHS):
        sampler.set_epoch(epoch)
        for index in sampler:
            entry = dataset.entries[index % len(dataset)]
            clips.append((entry.path, int(dataset.clip_indices(entry.info.num_frames, index)[0])))
    return clips


def loader_clips_per_s(root: Path, backend: str) -> dict[str, float]:
    """Dataset items per second through a DataLoader of LOADER_WORKERS workers, in training order."""
    dataset = VideoFolderDataset(root, CLIP // 2, CLIP // 2, image_size=64, backend=backend, seed=0)
    sampler = ResumableSampler(dataset, shuffle=True, seed=0, fresh_each_epoch=True)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=LOADER_BATCH, sampler=sampler, num_workers=LOADER_WORKERS, persistent_workers=True
    )

    def epoch(run: int) -> None:
        sampler.set_epoch(run)
        for _ in loader:
            pass

    return rates(len(dataset), timed_runs(epoch, runs=TRAIN_RUNS))


def bench_training_order(source: Path, size: int) -> dict:
    root = source.parent / "train"
    for number in range(TRAIN_FILES):
        folder = root / f"class {number % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, folder / f"video {number:03d}.mp4")
    clips = training_clips(VideoFolderDataset(root, CLIP // 2, CLIP // 2, image_size=64, seed=0))
    variants = {
        f"{backend}_{'open_per_clip' if capacity == 0 else f'{OPEN_READERS}_open_readers'}": (
            backend,
            capacity,
        )
        for backend in ("decord", "opencv")
        for capacity in (0, OPEN_READERS)
    }
    seconds: dict[str, list[float]] = {name: [] for name in [*variants, "ffmpeg"]}
    hit_rates = {}
    for _ in range(TRAIN_RUNS + 1):  # the first run warms up
        for name, (backend, capacity) in variants.items():
            readers = ReaderCache(capacity) if capacity else None
            start = time.perf_counter()
            for path, first in clips:
                read_frames(path, range(first, first + CLIP), backend, readers)
            seconds[name].append(time.perf_counter() - start)
            if readers is not None:
                hit_rates[name] = readers.hits / (readers.hits + readers.misses)
        rtimes = [
            ffmpeg_rtime(
                ["-threads", "1", "-ss", f"{first / FPS:.6f}", "-i", str(path), "-frames:v", str(CLIP)]
            )
            for path, first in clips
        ]
        seconds["ffmpeg"].append(sum(rtimes))
    result: dict = {
        "files": TRAIN_FILES,
        "clips_per_run": len(clips),
        "order": f"ResumableSampler shuffle, fresh_each_epoch, {TRAIN_EPOCHS} epochs",
    }
    for name, values in seconds.items():
        result[f"{name}_clips_per_s"] = rates(len(clips), values[1:])
    ffmpeg = result["ffmpeg_clips_per_s"]["median"]
    result["vs_ffmpeg"] = {name: result[f"{name}_clips_per_s"]["median"] / ffmpeg for name in variants}
    result["reader_cache_hit_rate"] = hit_rates
    result[f"dataloader_{LOADER_WORKERS}_workers_items_per_s"] = {
        backend: loader_clips_per_s(root, backend) for backend in ("decord", "opencv")
    }
    return result


def workers_to_feed_one_gpu(items_per_s_per_worker: float) -> dict:
    """DataLoader workers that keep up with bench/gpu_step.py's kinetics600_64 step rate, once it has run."""
    if not GPU_STEP.is_file():
        return {"status": "not computed: bench/results/gpu_step.json is missing (no GPU was lent)"}
    configs = json.loads(GPU_STEP.read_text())["configs"]
    vidgan = next(c for c in configs.values() if "kinetics600_64" in c["config"])
    return {
        "gpu_clips_per_s": vidgan["samples_per_s"],
        "items_per_s_per_worker": items_per_s_per_worker,
        "workers": math.ceil(vidgan["samples_per_s"] / items_per_s_per_worker),
    }


# ---------------------------------------------------------------------------------------- consumer
class StandIn(nn.Module):
    """Per-frame conv stack: (B, T, C, 64, 64) -> same shape (G) or logits (B,) (D)."""

    def __init__(self, channels: int, width: int, critic: bool) -> None:
        super().__init__()
        layers = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Conv2d(width, width, 3, padding=1, stride=2 if critic else 1), nn.ReLU()]
        layers += [nn.Conv2d(width, 1 if critic else channels, 3, padding=1)]
        self.net, self.critic = nn.Sequential(*layers), critic

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        out = self.net(clip.flatten(0, 1))  # time folded into batch
        return out.mean((1, 2, 3)).view(clip.shape[0], -1).sum(1) if self.critic else out.view(clip.shape)


class StandInGAN:
    """The stand-in consumer: G predicts the future per frame, D scores context + future; hinge loss."""

    def __init__(self) -> None:
        self.generator, self.discriminator = StandIn(3, 32, critic=False), StandIn(3, 32, critic=True)

    def discriminator_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        context, target = batch
        fake = self.generator(context).detach()
        real_logits = self.discriminator(torch.cat([context, target], 1))
        fake_logits = self.discriminator(torch.cat([context, fake], 1))
        return torch.relu(1 - real_logits).mean() + torch.relu(1 + fake_logits).mean(), {}

    def generator_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        context, _ = batch
        return -self.discriminator(torch.cat([context, self.generator(context)], 1)).mean(), {}


def consumer_step(batch: int) -> tuple[Callable[[], None], str]:
    """One training step (2 D + 1 G updates) on a random batch, and a description of what it trains."""
    clips = torch.rand(batch, 10, 3, 64, 64), torch.rand(batch, 10, 3, 64, 64)
    try:
        from vidgan.module import VideoGAN

        model = VideoGAN(context_frames=10, future_frames=10, channels=3, resolution=64)
        what = "vidgan.module.VideoGAN defaults (DVD-GAN-FP), 64x64, 3 channels, 10 -> 10 frames"
    except ImportError:
        model = StandInGAN()
        what = "STAND-IN (vidgan.module not importable): 4-layer 32-wide per-frame conv G and D, hinge loss"
    g_opt = torch.optim.Adam(model.generator.parameters(), 1e-4)
    d_opt = torch.optim.Adam(model.discriminator.parameters(), 1e-4)

    def step() -> None:
        for _ in range(2):
            d_opt.zero_grad()
            model.discriminator_loss(clips)[0].backward()
            d_opt.step()
        g_opt.zero_grad()
        model.generator_loss(clips)[0].backward()
        g_opt.step()

    return step, what


def bench_consumer() -> dict:
    step, what = consumer_step(CONSUMER_BATCH)
    seconds = timed_runs(lambda run: step(), runs=3)
    scale = TRAIN_BATCH / CONSUMER_BATCH
    return {
        "model": what,
        "measured_batch": CONSUMER_BATCH,
        "step_seconds_at_measured_batch": summary(seconds),
        "estimated_step_seconds_at_batch_16": statistics.median(seconds) * scale,
        "clips_per_s": TRAIN_BATCH / (statistics.median(seconds) * scale),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> int:
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    default = resolve_backends("auto")[0]
    load_before = os.getloadavg()
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    versions = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    result = {
        "command": "python bench/data_decode.py",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "versions": {
            "decord": decord.__version__,
            "opencv": cv2.__version__,
            "ffmpeg": versions,
            "torch": torch.__version__,
        },
        "runs": RUNS,
        "clips_per_run": CLIPS_PER_RUN,
        "decode_threads": 1,
        "default_backend": default,
        "sizes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        torch.set_num_threads(1)
        for size in SIZES:
            folder = Path(tmp) / str(size)
            folder.mkdir()
            write_testsrc(folder / "testsrc.mp4", size)
            result["sizes"][str(size)] = bench_size(folder / "testsrc.mp4", size)
            print(f"{size}x{size}: {json.dumps(result['sizes'][str(size)], indent=1)}", flush=True)
            order = bench_training_order(folder / "testsrc.mp4", size)
            result["sizes"][str(size)]["training_order"] = order
            print(f"{size}x{size} training order: {json.dumps(order, indent=1)}", flush=True)
    torch.set_num_threads(threads)
    result["consumer"] = bench_consumer()
    consumer = result["consumer"]["clips_per_s"]
    result["goals"] = {
        f"{size}": {
            "decord_vs_ffmpeg_same_clips": s["decord_vs_ffmpeg_clips"],
            "decord_reused_reader_vs_ffmpeg_same_clips": s["decord_reused_reader_vs_ffmpeg_clips"],
            "decord_vs_ffmpeg_goal_0.8_met": s["decord_vs_ffmpeg_clips"] >= 0.8,
            "dataset_item_vs_consumer": s["dataset_item_clips_per_s"]["median"] / consumer,
            "dataset_item_vs_consumer_goal_3_met": s["dataset_item_clips_per_s"]["median"] / consumer >= 3,
            "training_order_default_vs_ffmpeg": s["training_order"]["vs_ffmpeg"][f"{default}_open_per_clip"],
            "training_order_default_goal_0.8_met": s["training_order"]["vs_ffmpeg"][
                f"{default}_open_per_clip"
            ]
            >= 0.8,
            "training_order_vs_ffmpeg": s["training_order"]["vs_ffmpeg"],
            "training_order_goal_0.8_met": {
                name: ratio >= 0.8 for name, ratio in s["training_order"]["vs_ffmpeg"].items()
            },
        }
        for size, s in result["sizes"].items()
    }
    per_worker = result["sizes"]["64"]["dataset_item_clips_per_s"]["median"]
    result["workers_to_feed_one_gpu_at_64px"] = workers_to_feed_one_gpu(per_worker)
    result["load_average_1_5_15_min"] = {"before": load_before, "after": os.getloadavg()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"consumer": result["consumer"], "goals": result["goals"]}, indent=1))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
