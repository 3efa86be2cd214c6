"""Shapes-scenes text-to-image quality under one CPU wall budget: the t2i image-stage table (docs/results.md).

Runs the whole user path with the `t2i` command, each training stage capped by its share of
`--minutes` (`trainer.max_time`), except the judge, which is not part of the system under test:
1. `t2i data shapes` (10000 + 1000 images, 64 px, unless --train / --val say otherwise);
2. `t2i fit` configs/t2i/shapes_clip.yaml        -> the CLIP that conditions the image stage;
3. `t2i fit` configs/t2i/shapes_clip_judge.yaml  -> the separately trained judge CLIP (seed 1), to
   its configured max_steps whatever the time, outside the budget, so R-precision always comes from
   the same judge recipe;
4. `t2i fit` configs/t2i/shapes_layout.yaml      -> the layout stage;
5. `t2i fit` configs/t2i/shapes_image.yaml       -> the image stage (pointing at 2 and 4);
6. `t2i eval` with --clip from 3: SOA-C / SOA-I (generated vs real), colour binding on two-object
   captions with different colours, relation accuracy, fd_local, CLIP score and R-precision, for
   predicted layouts and for ground-truth layouts.

    python bench/t2i_image.py --minutes 240                     # the docs/results.md table
    python bench/t2i_image.py --minutes 60 --work W2 --image-args='--model.init_args.phrase_context=true'
    python bench/t2i_image.py --minutes 6 --train 400 --val 100 --threads 1 --smoke \
        --layout-config shapes_layout_tiny.yaml --work runs/bench_t2i_smoke --out /tmp/t2i_smoke.json

Stages already done in `--work` (a `done` marker) are reused: copy a finished work folder without
its `image/` to train only another image stage on the same data, CLIPs, layout and judges.

Writes bench/results/t2i_image.json (metrics, stage timings, the goal check SOA-C >= 0.85 x real).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs/t2i"
RESULTS = ROOT / "bench/results/t2i_image.json"
SHARES = {"clip": 0.12, "layout": 0.2, "image": 0.5}  # of --minutes; data and eval take the rest
GOAL = 0.85  # SOA-C of generated images as a fraction of real images' SOA-C


def t2i(*args: str, log: Path) -> float:
    """Run `t2i ARGS` (this interpreter), appending its output to `log`; returns the wall seconds."""
    start = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ t2i {' '.join(args)}\n")
        out.flush()
        done = subprocess.run([sys.executable, "-m", "t2i.cli", *args], stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"t2i {args[0]} failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - start


def max_time(minutes: float) -> str:
    """Lightning's DD:HH:MM:SS for a budget in minutes (at least one minute)."""
    total = max(60, int(minutes * 60))
    return f"00:{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def fit(config: str, root: Path, minutes: float | None, data: Path, log: Path, *extra: str) -> float:
    """`t2i fit` a config into `root`, stopped by `minutes` of wall time (None: no limit) or its own
    max_steps.

    A stage whose `root/done` marker exists (a finished earlier run in the same --work) is reused.
    """
    if (root / "done").exists():
        return 0.0
    args = [
        "fit",
        "--config",
        str(CONFIGS / config),
        f"--trainer.default_root_dir={root}",
        *([] if minutes is None else [f"--trainer.max_time={max_time(minutes)}"]),
        "--trainer.enable_progress_bar=false",
        f"--data.init_args.data_dir={data}",
        *extra,
    ]
    seconds = t2i(*args, log=log)
    (root / "done").write_text(f"{seconds:.1f} s\n")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=240.0, help="total wall budget (default 240)")
    parser.add_argument("--work", default="runs/bench_t2i_image", help="folder for data, runs and logs")
    parser.add_argument("--train", type=int, default=10000, help="shapes train images (default 10000)")
    parser.add_argument("--val", type=int, default=1000, help="shapes val images (default 1000)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per stage (default 2)")
    parser.add_argument("--layout-config", default="shapes_layout.yaml", help="layout config in configs/t2i")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="small eval judges (100 SOA / 50 fd_local steps) for a quick check",
    )
    parser.add_argument(
        "--image-args",
        default="",
        help="extra overrides for the image stage, e.g. '--model.init_args.phrase_context=true'",
    )
    parser.add_argument("--out", default=str(RESULTS), help="results json")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log, data = work / "log.txt", work / "data"
    seconds: dict[str, float] = {}
    if not (data / "annotations" / "instances_val.json").exists():
        seconds["data"] = t2i(
            "data", "shapes", "--out", str(data), "--train", str(args.train), "--val", str(args.val), log=log
        )
    shares = {k: v * args.minutes for k, v in SHARES.items()}
    clip, judge = work / "clip" / "clip.pt", work / "judge_clip" / "clip.pt"
    seconds["clip"] = fit(
        "shapes_clip.yaml", work / "clip", shares["clip"], data, log, f"--model.init_args.export_path={clip}"
    )
    seconds["judge_clip"] = fit(
        "shapes_clip_judge.yaml",
        work / "judge_clip",
        None,
        data,
        log,
        f"--model.init_args.export_path={judge}",
    )
    # The layout config chooses its own text tower (shapes_layout.yaml trains one with the boxes).
    seconds["layout"] = fit(args.layout_config, work / "layout", shares["layout"], data, log)
    layout_ckpt = work / "layout" / "checkpoints" / "last.ckpt"
    seconds["image"] = fit(
        "shapes_image.yaml",
        work / "image",
        shares["image"],
        data,
        log,
        f"--model.init_args.clip_path={clip}",
        f"--model.init_args.layout_checkpoint={layout_ckpt}",
        *shlex.split(args.image_args),
    )
    metrics_path = work / "metrics.json"
    image_ckpt = work / "image" / "checkpoints" / "last.ckpt"
    eval_args = [
        "eval",
        "--ckpt_path",
        str(image_ckpt),
        "--data",
        str(data),
        "--clip",
        str(judge),
        "--out",
        str(metrics_path),
    ]
    eval_args += ["--judges", str(work / "judges"), "--quiet"]
    eval_args += ["--soa-steps", "100", "--fd-steps", "50"] if args.smoke else []
    seconds["eval"] = t2i(*eval_args, log=log)
    metrics = json.loads(metrics_path.read_text())
    ratio = metrics.get("soa_c_vs_real", {}).get("predicted_layout", float("nan"))
    result: dict[str, Any] = {
        "budget_minutes": args.minutes,
        "threads": args.threads,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "data": {"train": args.train, "val": args.val, "size": 64},
        "layout_config": args.layout_config,
        "image_args": args.image_args,
        "smoke": args.smoke,
        "stage_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "metrics": metrics,
        "goal": {"soa_c_vs_real": GOAL, "predicted_layout": ratio, "met": bool(ratio >= GOAL)},
        "command": " ".join(["python", "bench/t2i_image.py", *sys.argv[1:]]),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    pred, truth, real = metrics["predicted_layout"], metrics["ground_truth_layout"], metrics["real"]
    for name, row in (("predicted layout", pred), ("ground-truth layout", truth), ("real images", real)):
        cells = " ".join(
            f"{k}={row[k]:.3f}"
            for k in ("soa_c", "soa_i", "color_binding", "clip_score", "r_precision")
            if k in row
        )
        print(f"{name:>20}: {cells}")
    print(f"goal SOA-C >= {GOAL} x real: {ratio:.2f} -> {args.out}")


if __name__ == "__main__":
    main()
