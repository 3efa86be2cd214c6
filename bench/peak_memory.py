"""Peak resident memory (RSS) of a tiny training run of each family, each in its own process.

    python bench/peak_memory.py [--repeats 5] [--threads 1]

Runs, RUNS times each, alternating:
- `vidgan fit --config configs/vidgan/moving_mnist_tiny.yaml` for 12 optimiser steps (batch 8,
  Moving MNIST generated on the fly, no validation);
- `t2i fit --config configs/t2i/shapes_image_tiny.yaml` for 12 optimiser steps (batch 32, 32 px,
  a random frozen text tower instead of the CLIP file, 64 rendered shapes images);
- `python -c "import torch, pytorch_lightning"`, the floor every run starts from.
Loggers and progress bars are off (the CLIs' last.ckpt goes to a temporary folder). The peak is
the child's `ru_maxrss` from `os.wait4` (the kernel's high-water mark of its resident set, VmHWM).
Writes bench/results/peak_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stats import summary

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "peak_memory.json"
BIN = Path(sys.executable).parent
QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false",
         "--trainer.enable_model_summary=false", "--trainer.max_steps=12",
         "--trainer.limit_val_batches=0"]  # fmt: skip


def commands(work: Path) -> dict[str, list[str]]:
    vidgan = [str(BIN / "vidgan"), "fit", "--config", "configs/vidgan/moving_mnist_tiny.yaml", *QUIET,
              "--data.train_sequences=200", "--data.val_sequences=8",
              f"--trainer.default_root_dir={work / 'vidgan'}"]  # fmt: skip
    t2i = [str(BIN / "t2i"), "fit", "--config", "configs/t2i/shapes_image_tiny.yaml", *QUIET,
           "--model.init_args.clip_path=null", f"--data.init_args.data_dir={work / 'shapes'}",
           "--data.init_args.shapes.train=64", "--data.init_args.shapes.val=8",
           f"--trainer.default_root_dir={work / 't2i'}"]  # fmt: skip
    imports = [sys.executable, "-c", "import torch, pytorch_lightning"]
    return {"vidgan_tiny_fit": vidgan, "t2i_image_tiny_fit": t2i, "import_torch_lightning": imports}


def peak_rss_mb(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one run of argv; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start  # ru_maxrss is in KiB on Linux


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the runs")
    parser.add_argument("--out", default=str(RESULT))
    args = parser.parse_args()
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "WANDB_MODE": "disabled"}
    with tempfile.TemporaryDirectory(prefix="peak_memory_") as tmp:
        runs = commands(Path(tmp))
        peaks: dict[str, list[float]] = {name: [] for name in runs}
        walls: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, argv in runs.items():
                peak, wall = peak_rss_mb(argv, env)
                peaks[name].append(peak)
                walls[name].append(wall)
                print(f"{name}: {peak:.0f} MB peak RSS, {wall:.1f} s", flush=True)
    result = {
        "command": "python bench/peak_memory.py",
        "what": "peak RSS (ru_maxrss, MB) of each run's process; 12 optimiser steps, loggers off",
        "peak_rss_mb": {name: summary(xs) for name, xs in peaks.items()},
        "wall_s": {name: summary(xs) for name, xs in walls.items()},
        "argv": {
            name: [Path(a).name if i == 0 else a for i, a in enumerate(argv)] for name, argv in runs.items()
        },
        "repeats": args.repeats,
        "threads": args.threads,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["peak_rss_mb"], indent=2))


if __name__ == "__main__":
    main()
