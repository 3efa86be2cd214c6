"""FID and Inception Score as published tables compute them, and Fréchet distances in other feature nets.

Published text-to-image FIDs and ISs (AttnGAN, Obj-GAN, OP-GAN, ...) use the TF-Inception weights
(`inception-2015-12-05`), which torch-fidelity and torchmetrics load as torch-fidelity's
`FeatureExtractorInceptionV3` state dict (`pt_inception-2015-12-05`). An `--inception` file is
recognised by its content, never by its name:
- that state dict (torchvision's Inception-v3 layer names without the auxiliary head, and the TF
  graph's 1008-output classifier) gives `fid` and `is`, computed by
  torch-fidelity with the file's weights; when its SHA-256 is not the published one (the hash
  prefix in torch-fidelity's download name) a warning says the numbers are not comparable;
- a torchvision `inception_v3` state dict (aux head, 1000 classes) gives `fd_inception_v3`, and a
  TorchScript network called as `net(uint8 images, return_features=True)` (StyleGAN2-ADA's
  convention) gives `fd_torchscript`; both with a warning: they are Fréchet distances, not FID.

Features are computed once per image set; the Fréchet distance is `ganforge.metrics.frechet_distance`
and the Inception Score `isc_features_to_metric`, both torch-fidelity's. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.hub import HASH_REGEX

from ganforge.checkpoint import load_state_file
from ganforge.errors import UserError

INCEPTION_SIZE = 299
TF_KIND = "tf_inception"
TF_CLASSES = 1008  # outputs of the 2015-12-05 TF graph's softmax layer (torchvision's net has 1000)
TORCHVISION_CLASSES = 1000
DESCRIPTIONS = {"inception_v3": "torchvision inception_v3 state dict", "torchscript": "TorchScript network"}
IS_SPLITS = 10  # Salimans et al. 2016: mean and std of the score over 10 splits


def published_sha256_prefix() -> str:
    """The hash prefix torch-fidelity's download name gives for the published TF-Inception weights."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return HASH_REGEX.search(Path(URL_INCEPTION_V3).name).group(1)


def _template(classes: int, aux_logits: bool) -> dict[str, tuple[int, ...]]:
    """Parameter and buffer shapes of torchvision's Inception-v3 (built on the meta device, no memory)."""
    from torchvision.models import inception_v3

    with torch.device("meta"):
        net = inception_v3(weights=None, aux_logits=aux_logits, init_weights=False, num_classes=classes)
    return _shapes(net.state_dict())


def _shapes(state: dict[str, Tensor]) -> dict[str, tuple[int, ...]]:
    # BatchNorm's num_batches_tracked counters are optional in a file: loading fills them in.
    return {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive: a zip holding `<name>/constants.pkl` (a `torch.save` zip has none)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class InceptionFile:
    """What an `--inception` file holds: `kind` is "tf_inception", "inception_v3" or "torchscript"."""

    path: Path
    kind: str
    sha256: str

    @property
    def is_tf_inception(self) -> bool:
        return self.kind == TF_KIND

    @property
    def published(self) -> bool:
        """The TF-Inception format with the published file's hash."""
        return self.is_tf_inception and self.sha256.startswith(published_sha256_prefix())

    @property
    def fd_name(self) -> str:
        """The metric key: `fid` for TF-Inception, else `fd_<kind>`."""
        return "fid" if self.is_tf_inception else f"fd_{self.kind}"

    def warning(self) -> str | None:
        """Why the numbers are not comparable with published tables, or None when they are."""
        if self.published:
            return None
        if self.is_tf_inception:
            return (
                f"--inception '{self.path}' has the TF-Inception layout but its sha256 {self.sha256[:12]}... "
                f"is not the published file's ({published_sha256_prefix()}...): other weights, so fid and "
                "is are not comparable with published tables"
            )
        return (
            f"--inception '{self.path}' is a {DESCRIPTIONS[self.kind]}, not the TF-Inception weights "
            f"(pt_inception-2015-12-05, {TF_CLASSES} classes): {self.fd_name} is a Fréchet distance, not "
            "FID, and is not comparable with published FIDs"
        )


def inspect_inception(path: str | os.PathLike) -> InceptionFile:
    """Recognise an `--inception` file by content; UserError naming the file when it is none of the three."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--inception '{path}' does not exist")
    if _is_torchscript(path):
        return InceptionFile(path, "torchscript", _sha256(path))
    state = load_state_file(path, what="--inception")  # CheckpointError (a UserError) naming the file
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"--inception '{path}' holds a {type(state).__name__}, not a state dict of tensors")
    shapes = _shapes(state)
    for kind, template in (
        (TF_KIND, _template(TF_CLASSES, aux_logits=False)),
        ("inception_v3", _template(TORCHVISION_CLASSES, aux_logits=True)),
    ):
        if shapes == template:
            return InceptionFile(path, kind, _sha256(path))
    fc = shapes.get("fc.weight")
    raise UserError(
        f"--inception '{path}' is not an Inception-v3 state dict: {len(shapes)} tensors, fc.weight {fc}; "
        f"expected torch-fidelity's TF-Inception (fc.weight {(TF_CLASSES, 2048)}, no AuxLogits) or "
        f"torchvision's inception_v3 (fc.weight {(TORCHVISION_CLASSES, 2048)})"
    )


# ---------------------------------------------------------------------------------------------- networks
class InceptionFeatures(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> pool features (B, 2048); TF-Inception also gives logits (B, 1008).

    TF-Inception runs torch-fidelity's `FeatureExtractorInceptionV3` (uint8 in, TF-compatible
    bilinear resize to 299 inside); torchvision's net gets 299 px bilinear inputs with ImageNet
    normalisation; TorchScript gets uint8 images and resizes itself.
    """

    def __init__(self, source: InceptionFile) -> None:
        super().__init__()
        self.source = source
        if source.is_tf_inception:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

            # torch-fidelity unpickles the file in full; `inspect_inception` has already read it with
            # weights_only=True and found only tensors.
            self.net = FeatureExtractorInceptionV3(
                "inception-v3-compat",
                ["2048", "logits_unbiased"],
                feature_extractor_weights_path=str(source.path),
            )
        elif source.kind == "torchscript":
            self.net = torch.jit.load(str(source.path), map_location="cpu")
        else:
            from torchvision.models import inception_v3

            self.net = inception_v3(weights=None, aux_logits=True, init_weights=False)
            self.net.load_state_dict(load_state_file(source.path, what="--inception"))
            self.net.fc = nn.Identity()  # pool features instead of ImageNet logits
        self.net.eval()

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """(pool (B, F), logits (B, 1008) for TF-Inception else None)."""
        if self.source.kind in (TF_KIND, "torchscript"):
            pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8)
            if self.source.is_tf_inception:
                pool, logits = self.net(pixels)
                return pool, logits
            return self.net(pixels, return_features=True), None
        images = F.interpolate(images, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", antialias=True)
        mean = images.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # torchvision's ImageNet stats
        std = images.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return self.net((images - mean) / std), None


# ---------------------------------------------------------------------------------------------- scores
@torch.no_grad()
def extract(net: nn.Module, images: Tensor, batch_size: int = 100) -> tuple[Tensor, Tensor | None]:
    """(features (N, F), logits (N, K) or None) of images (N, 3, H, W) in [0, 1], on the net's device.

    `net(images)` returns features, or (features, logits or None) as `InceptionFeatures` does.
    """
    device = next(net.parameters(), torch.empty(0)).device
    pools, logits = [], []
    for start in range(0, len(images), batch_size):
        out = net(images[start : start + batch_size].to(device).float())
        pool, logit = out if isinstance(out, tuple) else (out, None)
        pools.append(pool.float().cpu())
        if logit is not None:
            logits.append(logit.float().cpu())
    return torch.cat(pools), (torch.cat(logits) if logits else None)


def inception_score(logits: Tensor, seed: int, splits: int = IS_SPLITS) -> dict[str, float]:
    """{"is": mean, "is_std": std} over `splits` shuffled splits of logits (N, 1008), N >= splits."""
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    if len(logits) < splits:
        raise UserError(f"Inception Score over {splits} splits needs >= {splits} images, got {len(logits)}")
    scores = isc_features_to_metric(logits, splits=splits, shuffle=True, rng_seed=seed)
    return {"is": scores[KEY_METRIC_ISC_MEAN], "is_std": scores[KEY_METRIC_ISC_STD]}
