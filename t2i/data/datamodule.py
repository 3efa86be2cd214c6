"""Lightning datamodule over a COCO-format folder: shapes-scenes (rendered on demand) or real COCO."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from torch.utils.data import DataLoader

from ganforge.data import SplitDataModule, split_loader
from ganforge.errors import UserError
from t2i.data.coco import CocoLayoutDataset, check_coco_splits, collate_layouts
from t2i.data.shapes_scenes import ShapesSpec, render_shapes

STAGE_SPLITS = {"fit": "train", "validate": "val", "test": "test", "predict": "test"}


class CocoLayoutDataModule(SplitDataModule):
    """Train / val / test loaders of `CocoLayoutDataset` items collated by `collate_layouts`.

    Files are found as `data_dir/annotations/instances_{split}.json`,
    `data_dir/annotations/captions_{split}.json` and `data_dir/{images_subdir}` with `{split}`
    filled in. The defaults match `t2i data shapes`; for real COCO 2014 (the split AttnGAN and
    Obj-GAN report on) use `train_split: train2014, val_split: val2014, images_subdir: "{split}"`,
    for COCO 2017 `train2017` / `val2017` (train2017 with val2014 is refused: it holds most of it).

    Args:
        data_dir: dataset root.
        image_size: side of the square images and masks.
        batch_size: items per batch.
        max_objects: objects per image after filtering (N of the batch tensors).
        min_object_area: smallest box kept, as a fraction of the image area.
        num_workers: DataLoader worker processes.
        train_split, val_split: split names; `test_split` defaults to `val_split`.
        images_subdir: image folder below `data_dir`, with `{split}` filled in.
        shapes: when given and `data_dir` holds no instances file for the train split yet,
            render a shapes-scenes dataset there first (`t2i data shapes` with these settings).
        with_masks: rasterise object masks (stages that use only boxes can skip the cost).
        seed: seed of the training order (a new permutation per epoch from `seed + epoch`); the
            position inside the epoch is saved in checkpoints, so a resumed fit continues it.
    """

    def __init__(
        self,
        data_dir: str,
        image_size: int = 64,
        batch_size: int = 64,
        max_objects: int = 10,
        min_object_area: float = 0.02,
        num_workers: int = 0,
        train_split: str = "train",
        val_split: str = "val",
        test_split: str | None = None,
        images_subdir: str = "images/{split}",
        shapes: ShapesSpec | None = None,
        with_masks: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1 or num_workers < 0:
            raise UserError(f"data: batch_size={batch_size} must be >= 1 and num_workers={num_workers} >= 0")
        self.data_dir = Path(data_dir)
        self.image_size, self.batch_size, self.num_workers = image_size, batch_size, num_workers
        self.max_objects, self.min_object_area = max_objects, min_object_area
        check_coco_splits(train_split, val_split)
        self.splits = {"train": train_split, "val": val_split, "test": test_split or val_split}
        self.images_subdir, self.shapes, self.with_masks = images_subdir, shapes, with_masks
        self.seed = seed
        self.datasets: dict[str, CocoLayoutDataset] = {}

    def prepare_data(self) -> None:
        if self.shapes is not None and not self._instances(self.splits["train"]).exists():
            render_shapes(self.data_dir, self.shapes)

    def _instances(self, split: str) -> Path:
        return self.data_dir / "annotations" / f"instances_{split}.json"

    def setup(self, stage: str) -> None:
        """Read the dataset `stage` runs on ("fit": train), which `class_names` then comes from."""
        self.dataset(STAGE_SPLITS[stage])

    @property
    def class_names(self) -> list[str]:
        """Category names in id order, without the padding class, of the first split read (else train)."""
        return list(self.dataset(next(iter(self.datasets), "train")).category_names[1:])

    def dataset(self, stage: str) -> CocoLayoutDataset:
        """The dataset of "train", "val" or "test", read on first use."""
        if stage not in self.datasets:
            split = self.splits[stage]
            self.datasets[stage] = CocoLayoutDataset(
                self.data_dir / self.images_subdir.format(split=split),
                self._instances(split),
                self.data_dir / "annotations" / f"captions_{split}.json",
                self.image_size,
                max_objects=self.max_objects,
                min_object_area=self.min_object_area,
                train=stage == "train",
                with_masks=self.with_masks,
            )
        return self.datasets[stage]

    def _loader(self, split: str) -> DataLoader:
        return split_loader(
            self.dataset(split),
            split,
            self.trainer,
            dict(seed=self.seed),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=partial(collate_layouts, max_objects=self.max_objects),
        )
