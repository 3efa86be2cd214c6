# ganforge: `make demo` and `make test` each do their own set-up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# pip here warns about every missing local index folder; hide that noise but keep pip's exit status.
PIP_QUIET := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; exit $${PIPESTATUS[0]}
APT_PACKAGES := ffmpeg slurmctld slurmd slurm-client munge
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2

.PHONY: install apt venv demo test lint format bench clean

install: apt venv

# System packages the tests need: ffmpeg writes real mp4s, Slurm + munge run the local test cluster.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

# The CUDA build of torch that pip takes from local disk needs ~6.5 GB in the venv: say so before pip
# runs out of space half-way ("OSError: [Errno 28] No space left on device").
VENV_MIN_FREE_GB ?= 7

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@free_gb=$$(df -Pk $(VENV) | awk 'NR==2 {print int($$4 / 1048576)}'); \
	if [ -z "$$(ls $(VENV)/lib/python3*/site-packages/torch 2>/dev/null | head -1)" ] && [ "$$free_gb" -lt $(VENV_MIN_FREE_GB) ]; then \
	  echo "error: installing into $(VENV) needs ~$(VENV_MIN_FREE_GB) GB free for torch's CUDA build; $$free_gb GB free there." \
	    "Free space (df -h $(VENV)) or set VENV=<dir on a larger disk>."; exit 1; \
	fi
	@echo "pip install -e .[dev] (torch from local disk; ~2 min on a fresh machine)"
	@$(PY) -m pip install -q --upgrade "pip<26.2" $(PIP_QUIET)
	@$(PY) -m pip install -q -e ".[dev]" $(PIP_QUIET)
	@$(PY) -W ignore -c "import torch, pytorch_lightning, decord, clip, wandb, ganforge" || (echo "install check failed"; exit 1)
	@touch $@

demo: install
	@# The ring GAN and t2i's tiny CLIP (the first t2i stage; it renders data/shapes_tiny, 2000 shapes scenes) are
	@# small: they run side by side at one thread each.
	OMP_NUM_THREADS=1 $(VENV)/bin/ganforge ring --out runs/demo/ring & ring=$$!; \
	OMP_NUM_THREADS=1 $(VENV)/bin/t2i fit --config configs/t2i/shapes_clip_tiny.yaml \
	  --trainer.default_root_dir runs/demo/t2i/clip; clip=$$?; wait $$ring && exit $$clip
	@# vidgan: DVD-GAN-FP with a reconstruction term trains for 2 min 40 s, then its predictions, copy-last and
	@# black frames are scored on 64 held-out sequences (test digit pool) -> runs/demo/vidgan/metrics.json.
	@# The demo weighs the reconstruction term 10x the tiny config's, as L1 + MSE, updates D once per G step and
	@# predicts with the warp head (each frame the previous one moved by a predicted flow): in that time the
	@# digits move on, sharp for the first predicted frames (docs/results.md, the demo runs).
	$(VENV)/bin/vidgan fit --config configs/vidgan/moving_mnist_tiny.yaml --trainer.max_time 00:00:02:40 \
	  --trainer.max_steps 5000 --trainer.default_root_dir runs/demo/vidgan --wandb.video_format gif \
	  --model.init_args.lambda_rec 1000 --model.init_args.rec_loss l1+mse --model.init_args.gan.d_steps_per_g_step 1 \
	  --model.init_args.output warp
	$(PY) -m vidgan.heldout_scores --ckpt_path runs/demo/vidgan/checkpoints/last.ckpt --sequences 64 \
	  --out runs/demo/vidgan/metrics.json
	@# t2i: the layout and image stages, then a grid for fixed captions. The layout stage (shapes_layout_demo.yaml)
	@# reaches val relation accuracy ~0.98 in 1000 generator steps. The image stage gets 2.25 minutes: boxes
	@# follow the captions and each object takes its own colour (phrase grounding).
	$(VENV)/bin/t2i fit --config configs/t2i/shapes_layout_demo.yaml --trainer.default_root_dir runs/demo/t2i/layout
	$(VENV)/bin/t2i fit --config configs/t2i/shapes_image_tiny.yaml --trainer.default_root_dir runs/demo/t2i/image \
	  --trainer.max_time 00:00:02:15 --model.init_args.clip_path runs/demo/t2i/clip/clip.pt \
	  --model.init_args.layout_checkpoint runs/demo/t2i/layout/checkpoints/last.ckpt
	$(VENV)/bin/t2i generate --ckpt_path runs/demo/t2i/image/checkpoints/last.ckpt --samples 4 --seed 0 \
	  "a red circle to the left of a blue square" "a green triangle above a yellow diamond" \
	  --out runs/demo/t2i/grid.png --layout-out runs/demo/t2i/layouts.png
	@echo "demo outputs under runs/demo/:"
	@echo "  ring:   runs/demo/ring/metrics.json, runs/demo/ring/samples.png"
	@echo "  vidgan: runs/demo/vidgan/samples/video/ (context | prediction | truth GIFs and filmstrip PNGs),"
	@echo "          runs/demo/vidgan/metrics.json (MSE, SSIM: model, copy-last, black frames),"
	@echo "          runs/demo/vidgan/checkpoints/last.ckpt, runs/demo/vidgan/wandb/ (offline W&B run)"
	@echo "  t2i:    runs/demo/t2i/grid.png (a row per caption, 4 samples), runs/demo/t2i/layouts.png (boxes drawn),"
	@echo "          runs/demo/t2i/{clip,layout,image}/ (clip.pt, checkpoints/last.ckpt, csv/ with the layout's val metrics)"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=15 $(PYTEST_ARGS)

# Every bench script writes bench/results/<name>.json. The t2i benches train under a wall budget that
# BENCH_MINUTES passes as --minutes (their own defaults, 60 and 240 minutes, add up to 5 hours;
# the docs/results.md tables name the budget each was measured with): make bench BENCH_MINUTES=60
BENCH_MINUTES ?= 30
bench: install
	@for f in bench/*.py; do \
	  grep -q '__main__' $$f || continue; echo "== $$f"; \
	  case $$f in bench/t2i_*) budget="--minutes $(BENCH_MINUTES)";; *) budget="";; esac; \
	  $(PY) $$f $$budget || exit 1; done

clean:
	rm -rf runs .pytest_cache .ruff_cache
