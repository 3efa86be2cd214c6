"""Video index: the first dataset start (probe every file, write the index) vs a second start (read it).

Run: `python bench/video_index.py [--videos 2000] [--runs 3]` (about 2 minutes on 2 cores).
Writes bench/results/video_index.json.

One ffmpeg process writes VIDEOS distinct short videos (testsrc2, 64x64, FRAMES frames at 25 fps,
libx264, each starting on a keyframe) with the segment muxer, spread over 20 class folders. Then,
alternating in each of RUNS runs:
- first start: `VideoFolderDataset` with no index: rank 0 probes every file in a process pool
  (one worker per CPU) and writes ROOT/.vidgan_index.json;
- second start: the same dataset again, reading the index (a stat per file, no probe).
Last, a 2-process DDP-style start from no index: rank 1 starts first and waits, rank 0 probes; each
process reports how many files it probed (the goal: each file once in total, rank 1 none).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from stats import summary

from vidgan.data.parallel import default_workers
from vidgan.data.video_folder import VideoFolderDataset
from vidgan.data.video_index import INDEX_NAME

FRAMES, FPS, SIZE, CLASSES = 32, 25, 64, 20
OUT = Path(__file__).parent / "results" / "video_index.json"
COMMAND = "python bench/video_index.py"


def generate(root: Path, videos: int) -> float:
    """Write `videos` distinct mp4s into CLASSES class folders; returns the seconds it took."""
    start = time.perf_counter()
    flat = root / "flat"
    flat.mkdir(parents=True)
    src = f"testsrc2=size={SIZE}x{SIZE}:rate={FPS}"
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src, "-frames:v", str(videos * FRAMES)]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(FRAMES), "-keyint_min", str(FRAMES)]
    cmd += ["-sc_threshold", "0", "-pix_fmt", "yuv420p", "-f", "segment", "-segment_time", str(FRAMES / FPS)]
    cmd += ["-reset_timestamps", "1", str(flat / "clip_%05d.mp4")]
    subprocess.run(cmd, check=True)
    for number, path in enumerate(sorted(flat.iterdir())):
        folder = root / f"class {number % CLASSES:02d}"  # Kinetics-style names with a space
        folder.mkdir(exist_ok=True)
        path.rename(folder / path.name)
    flat.rmdir()
    return time.perf_counter() - start


def timed_start(root: Path) -> tuple[float, VideoFolderDataset]:
    start = time.perf_counter()
    dataset = VideoFolderDataset(root, context_frames=5, future_frames=11, image_size=64)
    return time.perf_counter() - start, dataset


RANK_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from vidgan.data.video_folder import VideoFolderDataset
    print("ready", flush=True)
    start = time.perf_counter()
    dataset = VideoFolderDataset(sys.argv[1], 5, 11, image_size=64, rank=int(sys.argv[2]))
    seconds = time.perf_counter() - start
    print(json.dumps({"probed": dataset.probed, "videos": len(dataset), "seconds": seconds}))
    """
)


def two_rank_start(root: Path) -> dict:
    """Rank 1 starts (and waits) before rank 0; both build the dataset; what each probed."""
    (root / INDEX_NAME).unlink(missing_ok=True)
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def launch(rank: int) -> subprocess.Popen:
        args = [sys.executable, "-c", RANK_SCRIPT, str(root), str(rank)]
        return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)

    rank1 = launch(1)
    rank1.stdout.readline()  # "ready": rank 1 is about to look for the index
    rank0 = launch(0)
    results = {}
    for rank, process in ((0, rank0), (1, rank1)):
        out, _ = process.communicate(timeout=600)
        if process.returncode != 0:
            raise RuntimeError(f"rank {rank} failed with exit code {process.returncode}")
        results[f"rank_{rank}"] = json.loads(out.splitlines()[-1])
    results["probes_in_total"] = results["rank_0"]["probed"] + results["rank_1"]["probed"]
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "videos"
        generate_s = generate(root, args.videos)
        videos = sum(1 for _ in root.rglob("*.mp4"))
        print(f"generated {videos} videos in {generate_s:.1f} s", flush=True)
        first, second = [], []
        for run in range(args.runs):
            (root / INDEX_NAME).unlink(missing_ok=True)
            seconds, dataset = timed_start(root)
            assert dataset.probed == videos, f"the first start probed {dataset.probed} of {videos}"
            first.append(seconds)
            seconds, dataset = timed_start(root)
            assert dataset.probed == 0, f"the second start probed {dataset.probed} files"
            second.append(seconds)
            print(
                f"run {run + 1}: first start {first[-1]:.2f} s, second start {second[-1]:.3f} s", flush=True
            )
        ranks = two_rank_start(root)
        index_mb = (root / INDEX_NAME).stat().st_size / 1e6
    speedup = [f / s for f, s in zip(first, second)]
    result = {
        "command": f"{COMMAND} --videos {args.videos} --runs {args.runs}",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "videos": videos,
        "video": f"{SIZE}x{SIZE}, {FRAMES} frames at {FPS} fps, libx264 ultrafast, {CLASSES} class folders",
        "generate_seconds": generate_s,
        "probe_workers": default_workers(),
        "index_mb": index_mb,
        "first_start_seconds": summary(first),
        "second_start_seconds": summary(second),
        "second_start_speedup": summary(speedup),
        "two_rank_start": ranks,
        "goals": {
            "second_start_20x_faster_met": statistics.median(speedup) >= 20,
            "two_ranks_probe_each_file_once_met": ranks["probes_in_total"] == videos
            and ranks["rank_1"]["probed"] == 0,
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
