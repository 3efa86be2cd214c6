"""Moving MNIST 10 -> 10 at 64x64: DVD-GAN-FP against honest baselines under one CPU wall budget per row.

Rows:
- copy-last: repeat the last context frame;
- zero frames: predict black;
- ConvGRU baseline: `configs/vidgan/moving_mnist_convgru.yaml` (a regression loss only);
- DVD-GAN-FP: `configs/vidgan/moving_mnist.yaml`, adversarial only (lambda_rec = 0), one D step per
  G step (in 30 minutes best-of-8 SSIM 0.49, against 0.41 with the config's two);
- DVD-GAN-FP + L1: the same config with `rec_loss: l1`, `lambda_rec = 1000` and one D step per G
  step (the demo's setting; at pix2pix's 100 and two D steps, 0.54 SSIM in 30 minutes).

`--set ROW.KEY=VALUE` (repeatable) changes one init argument of a row's model, a dotted key reaching
into the `gan` options: `--set gan_l1.lambda_rec=1000 --set gan_l1.gan.d_steps_per_g_step=1`, or
`--set gan_l1.output=warp` (the warp output head, `vidgan.models.warp`).

Every learned row trains for the same wall-clock budget (`--minutes`, 15 by default) through the
same Lightning Trainer and the config's own `MovingMNISTDataModule` (on-the-fly sequences from the train
digit pool), with `--threads` torch threads. All rows are scored on the same fixed test set drawn
from the disjoint test digit pool. Metrics follow OpenSTL: MSE and MAE per frame (summed over
pixels, averaged over frames and sequences), SSIM and PSNR averaged per frame. GAN rows draw
`--samples` predictions per sequence (a new z each) and report mean-of-S (metrics averaged over the
samples) and best-of-S (per sequence, the sample with the best SSIM; SVG/SAVP convention).

    python bench/vidgan_quality.py --minutes 30 --threads 1   # docs/results.md: 3 x 30 min of training
    python bench/vidgan_quality.py --minutes 0.5        # smoke run

Writes bench/results/vidgan_quality.json and bench/results/vidgan_quality_ssim.png (per-step SSIM).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import logging
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import yaml

from vidgan.data.datamodule import data_module, linked_model_args
from vidgan.metrics import frame_metrics
from vidgan.models import copy_last_frame, zero_frames

ROOT = Path(__file__).resolve().parent.parent
GAN_CONFIG = ROOT / "configs/vidgan/moving_mnist.yaml"
BASELINE_CONFIG = ROOT / "configs/vidgan/moving_mnist_convgru.yaml"
METRICS = ("mse", "mae", "ssim", "psnr")
# the +L1 row: per-pixel L1 is ~0.05 on these frames, so the term outweighs the hinge loss ~50x
WITH_L1 = {"lambda_rec": 1000.0, "rec_loss": "l1", "gan": {"d_steps_per_g_step": 1}}


def load_config(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def build_model(config: dict[str, Any], overrides: dict[str, Any]) -> pl.LightningModule:
    """The config's `model` (class_path + init_args, and the frame settings of its data block, as
    `vidgan fit` links them), with `overrides` applied to its init args."""
    module_name, _, class_name = config["model"]["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**{**config["model"].get("init_args", {}), **linked_model_args(config["data"]), **overrides})


def apply_sets(sets: list[str], rows: dict[str, dict[str, Any]]) -> None:
    """Apply `ROW.KEY=VALUE` / `ROW.gan.KEY=VALUE` settings (VALUE parsed as YAML) to rows' overrides."""
    for item in sets:
        target, sep, value = item.partition("=")
        row, _, key = target.partition(".")
        if not sep or row not in rows or not key:
            raise SystemExit(f"--set {item!r}: expected ROW.KEY=VALUE with ROW one of {sorted(rows)}")
        *parents, leaf = key.split(".")
        node = rows[row]
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value)


def train_for(
    model: pl.LightningModule,
    config: dict[str, Any],
    minutes: float,
    batch_size: int | None,
    precision: str = "32-true",
) -> dict:
    """Fit `model` on the config's data for `minutes` of wall time at `precision`; returns timing facts."""
    batch_size = batch_size or config["data"]["init_args"]["batch_size"]
    # one long epoch: time is the limit
    data = data_module(config["data"], batch_size=batch_size, train_sequences=10**7)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        precision=precision,
        max_time={"seconds": minutes * 60},
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.fit(model, data)
    seconds = time.perf_counter() - start
    batches = trainer.fit_loop.epoch_loop.batch_progress.total.completed
    return {
        "train_seconds": round(seconds, 1),
        "train_batches": batches,
        "batch_size": batch_size,
        "seconds_per_batch": round(seconds / max(batches, 1), 3),
        "g_steps": int(getattr(model, "g_step", batches)),
        "precision": precision,
    }


def row_name(key: str, settings: dict[str, Any]) -> str:
    """The table label of a learned row from its model settings.

    E.g. "DVD-GAN-FP + L1 (lambda_rec=1000, D steps 1)", with ", warp head" for `output: warp`."""
    head = ", warp head" if settings.get("output", "pixels") == "warp" else ""
    if key == "convgru":
        return f"ConvGRU baseline ({settings.get('loss', 'mse').upper()}{head})"
    if key == "gan":
        return f"DVD-GAN-FP (adversarial only, D steps {settings['gan']['d_steps_per_g_step']}{head})"
    loss, weight, d_steps = (
        settings["rec_loss"].upper(),
        settings["lambda_rec"],
        settings["gan"]["d_steps_per_g_step"],
    )
    return f"DVD-GAN-FP + {loss} (lambda_rec={weight:g}, D steps {d_steps}{head})"


def test_set(config: dict[str, Any], sequences: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The fixed test batches (context, target) from the test digit pool."""
    data = data_module(config["data"], val_sequences=sequences, batch_size=32)
    data.setup("test")
    return [(c, t) for c, t, *_ in data.test_dataloader()]


def score(per_frame: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Means over sequences and frames plus the per-step SSIM curve, from (N, T) metric tensors."""
    row = {name: round(per_frame[name].mean().item(), 4) for name in METRICS}
    row["per_step_ssim"] = [round(v, 4) for v in per_frame["ssim"].mean(dim=0).tolist()]
    return row


def evaluate(predict, batches: list, samples: int, seed: int) -> dict[str, dict[str, Any]]:  # noqa: ANN001
    """Score `predict(context, generator)` on the test set; with samples > 1 also best-of-S."""
    per_sample: list[dict[str, list[torch.Tensor]]] = []
    for s in range(samples):
        gen = torch.Generator().manual_seed(seed + s)
        metrics: dict[str, list[torch.Tensor]] = {name: [] for name in METRICS}
        for context, target in batches:
            with torch.no_grad():
                pred = predict(context, gen)
            for name, value in frame_metrics(pred, target).items():
                metrics[name].append(value)
        per_sample.append(metrics)
    stacked = {name: torch.stack([torch.cat(m[name]) for m in per_sample]) for name in METRICS}  # (S, N, T)
    if samples == 1:
        return {"single": score({k: v[0] for k, v in stacked.items()})}
    best = stacked["ssim"].mean(dim=2).argmax(dim=0)  # (N,) best sample per sequence by SSIM
    rows = torch.arange(best.shape[0])
    return {
        f"mean_of_{samples}": score({k: v.mean(dim=0) for k, v in stacked.items()}),
        f"best_of_{samples}": score({k: v[best, rows] for k, v in stacked.items()}),
    }


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10.5, 4.5), dpi=110)
    for name, row in results.items():
        steps = range(1, len(row["per_step_ssim"]) + 1)
        ax.plot(steps, row["per_step_ssim"], marker="o", markersize=3, label=name)
    ax.set_xlabel("predicted frame")
    ax.set_ylabel("SSIM")
    ax.set_title("Moving MNIST 10 -> 10, 64x64: per-step SSIM")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside the curves, not over them
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="training wall budget per learned row")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for every row")
    parser.add_argument("--samples", type=int, default=8, help="samples per sequence for the GAN rows")
    parser.add_argument("--test-sequences", type=int, default=256)
    parser.add_argument("--set", action="append", default=[], help="ROW.KEY=VALUE: a row's init argument")
    parser.add_argument("--batch-size", type=int, default=None, help="override the configs' batch size")
    parser.add_argument("--seed", type=int, default=0, help="training seed (the test set is fixed)")
    parser.add_argument(
        "--precision",
        default=None,
        help="Lightning precision of the learned rows (default: the GAN config's)",
    )
    parser.add_argument("--rows", default="convgru,gan,gan_l1", help="learned rows: convgru, gan, gan_l1")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/vidgan_quality.json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    gan_config, baseline_config = load_config(GAN_CONFIG), load_config(BASELINE_CONFIG)
    args.precision = args.precision or gan_config["trainer"].get("precision", "32-true")
    batches = test_set(gan_config, args.test_sequences)
    future = gan_config["data"]["init_args"]["future_frames"]

    results: dict[str, dict[str, Any]] = {}
    results["copy-last"] = evaluate(lambda c, g: copy_last_frame(c, future), batches, 1, args.seed)["single"]
    results["zero frames"] = evaluate(lambda c, g: zero_frames(c, future), batches, 1, args.seed)["single"]
    configs = {"convgru": baseline_config, "gan": gan_config, "gan_l1": gan_config}
    overrides = {
        "convgru": {},
        "gan": {"lambda_rec": 0.0, "gan": {"d_steps_per_g_step": 1}},
        "gan_l1": copy.deepcopy(WITH_L1),
    }
    apply_sets(args.set, overrides)
    for key in args.rows.split(","):
        if key not in configs:
            parser.error(f"--rows: unknown row {key!r}, expected some of {sorted(configs)}")
        config = configs[key]
        settings = {**config["model"]["init_args"], **overrides[key]}
        if "gan" in overrides[key]:  # a partial `gan` block changes only the options it names
            settings["gan"] = overrides[key]["gan"] = {
                **config["model"]["init_args"]["gan"],
                **overrides[key]["gan"],
            }
        name = row_name(key, settings)
        pl.seed_everything(args.seed, verbose=False)
        model = build_model(config, overrides[key])
        facts = train_for(model, config, args.minutes, args.batch_size, args.precision)
        facts["params"] = sum(p.numel() for p in model.generator.parameters())
        model.eval()
        samples = args.samples if hasattr(model, "ema") else 1
        scored = evaluate(lambda c, g, m=model: m.predict(c, None, g), batches, samples, args.seed)
        for kind, row in scored.items():
            label = name if kind == "single" else f"{name}, {kind.replace('_', '-')}"
            results[label] = {**row, **facts, "overrides": overrides[key]}
        print(f"{name}: {facts}", flush=True)

    for name, row in results.items():
        numbers = f"MSE {row['mse']:8.2f} MAE {row['mae']:8.2f} SSIM {row['ssim']:.4f} PSNR {row['psnr']:.2f}"
        print(f"{name:55s} {numbers}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    png = args.out.with_name(args.out.stem + "_ssim.png")
    plot(results, png)
    report = {
        "protocol": {
            "task": "Moving MNIST, 64x64, 2 digits, 10 context -> 10 predicted frames",
            "test_sequences": args.test_sequences,
            "train_minutes_per_learned_row": args.minutes,
            "torch_threads": args.threads,
            "precision": args.precision,
            "seed": args.seed,
            "samples_per_sequence_gan": args.samples,
            "best_of_s": "per sequence, the sample with the highest mean SSIM",
            "metrics": "OpenSTL: MSE/MAE summed over pixels per frame; SSIM (torchmetrics, Gaussian 11x11) "
            "and PSNR per frame; all averaged over frames and sequences",
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
            "configs": [str(GAN_CONFIG.relative_to(ROOT)), str(BASELINE_CONFIG.relative_to(ROOT))],
        },
        "rows": results,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} and {png}")


if __name__ == "__main__":
    main()
