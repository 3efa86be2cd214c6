"""Sample media -> W&B objects: `wandb.Video` per clip, image grids, box overlays and a caption table.

For `media = model.sample(batch)` and each `key`:

- VideoMedia -> `samples/<key>`: one `wandb.Video` (uint8 (T, 3, H, W), mp4 or gif, the media's fps)
  per clip, captioned;
- ImageMedia -> `samples/<key>`: one `wandb.Image` grid of all images;
  `samples/<key>_layouts` (when boxes are given): one `wandb.Image` per image with `boxes=` overlays
  whose class labels W&B lets you toggle;
  `samples/<key>_table` (when captions are given): a `wandb.Table` caption | layout | image, the
  layout being the boxes on a blank canvas (the column is left out when there are no boxes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganforge.media import ImageMedia, LabeledBox, VideoMedia
from ganforge.media_files import image_grid, images_uint8, rgb_clips

BOX_GROUP = "layout"  # the name W&B shows for the box overlay set
CANVAS_GREY = 235


def wandb_boxes(boxes: list[LabeledBox], label_ids: dict[str, int]) -> dict[str, Any]:
    """W&B `boxes=` argument for one image: relative corner coordinates and stable class ids."""
    box_data = []
    for box in boxes:
        class_id = label_ids.setdefault(box.label, len(label_ids))
        position = {"minX": box.x, "maxX": box.x + box.w, "minY": box.y, "maxY": box.y + box.h}
        box_data.append({"position": position, "class_id": class_id, "box_caption": box.label})
    class_labels = {class_id: label for label, class_id in label_ids.items()}
    return {BOX_GROUP: {"box_data": box_data, "class_labels": class_labels}}


def to_wandb(
    media: dict[str, VideoMedia | ImageMedia],
    video_format: str = "mp4",
    label_ids: dict[str, int] | None = None,
) -> dict[str, Any]:
    """`{"samples/<key>...": wandb object}` for `media` (see the module docstring)."""
    import wandb

    label_ids = {} if label_ids is None else label_ids
    logged: dict[str, Any] = {}
    for key, item in media.items():
        if isinstance(item, VideoMedia):
            captions = item.captions or [None] * item.frames.shape[0]
            logged[f"samples/{key}"] = [
                wandb.Video(clip, fps=item.fps, format=video_format, caption=caption)
                for clip, caption in zip(rgb_clips(item.frames), captions)
            ]
            continue
        images = images_uint8(item.images)
        logged[f"samples/{key}"] = wandb.Image(image_grid(item.images), caption=f"{len(images)} samples")
        captions = item.captions or [None] * len(images)
        if item.boxes is not None:
            logged[f"samples/{key}_layouts"] = [
                wandb.Image(image, boxes=wandb_boxes(boxes, label_ids), caption=caption)
                for image, boxes, caption in zip(images, item.boxes, captions)
            ]
        if item.captions is not None:
            logged[f"samples/{key}_table"] = caption_table(images, item.captions, item.boxes, label_ids)
    return logged


def caption_table(
    images: np.ndarray, captions: list[str], boxes: list[list[LabeledBox]] | None, label_ids: dict[str, int]
) -> Any:
    """`wandb.Table` caption | layout | image for images (N, H, W, 3) uint8 (no layout column if no boxes)."""
    import wandb

    if boxes is None:
        rows = [[caption, wandb.Image(image)] for caption, image in zip(captions, images)]
        return wandb.Table(columns=["caption", "image"], data=rows)
    canvas = np.full_like(images[0], CANVAS_GREY)
    rows = [
        [caption, wandb.Image(canvas, boxes=wandb_boxes(layout, label_ids)), wandb.Image(image)]
        for caption, layout, image in zip(captions, boxes, images)
    ]
    return wandb.Table(columns=["caption", "layout", "image"], data=rows)
