"""Sample media as local files (mp4/gif, png, json): the fallback for people without W&B.

Layout under `out_dir` (usually `<run dir>/samples/`), with `S` the 7-digit logging step:

    <key>/step_S_<i>.mp4|gif     one clip per VideoMedia item, frames (T, H, W, 3)
    <key>/step_S_filmstrip.png   every clip as a row of its frames, viewable without a video player
    <key>/step_S.png             ImageMedia grid
    <key>/step_S_layouts.png     the grid again with each image's boxes and class labels drawn
    <key>/step_S_table.json      [{"caption": ..., "boxes": [{"label", "x", "y", "w", "h"}]}] per image

The array helpers here (`image_grid`, `rgb_clips`, `images_uint8`) are shared with the W&B writer.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torchvision.utils import make_grid

from ganforge.media import ImageMedia, LabeledBox, VideoMedia

# Box outline colours, cycled by class id (matplotlib's tab10).
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
MIN_DRAW_SIZE = 128  # images are upscaled (nearest) to at least this many pixels before labels are drawn


def rgb_clips(frames: Tensor) -> np.ndarray:
    """uint8 clips (N, T, C, H, W) with C in {1, 3} -> numpy (N, T, 3, H, W) uint8."""
    if frames.dtype != torch.uint8:
        raise ValueError(f"VideoMedia.frames must be uint8, got {frames.dtype}")
    if frames.shape[2] not in (1, 3):
        raise ValueError(f"VideoMedia.frames must have 1 or 3 channels, got shape {tuple(frames.shape)}")
    return frames.expand(-1, -1, 3, -1, -1).cpu().numpy() if frames.shape[2] == 1 else frames.cpu().numpy()


def images_uint8(images: Tensor) -> np.ndarray:
    """Float images (N, C, H, W) in [0, 1] with C in {1, 3} -> numpy (N, H, W, 3) uint8."""
    if images.shape[1] not in (1, 3):
        raise ValueError(f"ImageMedia.images must have 1 or 3 channels, got shape {tuple(images.shape)}")
    images = images.detach().float().clamp(0, 1).expand(-1, 3, -1, -1)
    return (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def image_grid(images: Tensor, pad_value: float = 1.0) -> np.ndarray:
    """Float images (N, C, H, W) in [0, 1] -> one near-square grid, numpy (H', W', 3) uint8."""
    nrow = math.ceil(math.sqrt(images.shape[0]))
    grid = make_grid(images.detach().float().clamp(0, 1).cpu(), nrow=nrow, padding=2, pad_value=pad_value)
    return images_uint8(grid[None])[0]


def filmstrip(clips: np.ndarray) -> np.ndarray:
    """Clips (N, T, 3, H, W) uint8 -> one image (H', W', 3) uint8: a row per clip, a column per frame."""
    frames = torch.from_numpy(clips).flatten(0, 1).float() / 255  # (N*T, 3, H, W)
    grid = make_grid(frames, nrow=clips.shape[1], padding=2, pad_value=1.0)
    return images_uint8(grid[None])[0]


def draw_boxes(image: np.ndarray, boxes: list[LabeledBox], label_ids: dict[str, int]) -> np.ndarray:
    """Image (H, W, 3) uint8 with `boxes` outlined and labelled, upscaled to >= MIN_DRAW_SIZE pixels."""
    scale = max(1, math.ceil(MIN_DRAW_SIZE / min(image.shape[:2])))
    canvas = Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    draw = ImageDraw.Draw(canvas)
    width, height = canvas.size
    for box in boxes:
        colour = PALETTE[label_ids.setdefault(box.label, len(label_ids)) % len(PALETTE)]
        x0, y0 = box.x * width, box.y * height
        x1, y1 = (box.x + box.w) * width - 1, (box.y + box.h) * height - 1
        draw.rectangle([x0, y0, max(x0, x1), max(y0, y1)], outline=colour, width=2)
        draw.text((x0 + 3, y0 + 2), box.label, fill=colour)
    return np.asarray(canvas)


def check_media(media: dict[str, VideoMedia | ImageMedia]) -> None:
    """Raise ValueError naming the key when an item is not media or its captions/boxes miss items."""
    for key, item in media.items():
        if not isinstance(item, (VideoMedia, ImageMedia)):
            raise ValueError(f"sample()[{key!r}] is {type(item).__name__}, expected VideoMedia or ImageMedia")
        count = item.frames.shape[0] if isinstance(item, VideoMedia) else item.images.shape[0]
        for field_name in ("captions", "boxes"):
            values = getattr(item, field_name, None)
            if values is not None and len(values) != count:
                raise ValueError(
                    f"sample()[{key!r}].{field_name} has {len(values)} entries for {count} items"
                )


def write_clip(frames: np.ndarray, path: Path, fps: int) -> None:
    """Write frames (T, H, W, 3) uint8 as mp4 (H.264, sides padded to even) or gif, by `path`'s suffix."""
    if path.suffix == ".gif":
        first, *rest = [Image.fromarray(frame) for frame in frames]
        first.save(path, save_all=True, append_images=rest, duration=round(1000 / fps), loop=0)
        return
    import imageio.v2 as imageio

    # yuv420p (what players accept) needs even sides; pad rather than let ffmpeg rescale.
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with imageio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)


def write_media(
    media: dict[str, VideoMedia | ImageMedia],
    out_dir: str | Path,
    step: int,
    video_format: str = "mp4",
    label_ids: dict[str, int] | None = None,
) -> list[Path]:
    """Write `media` under `out_dir` as described in the module docstring; returns the files written."""
    label_ids = {} if label_ids is None else label_ids
    written: list[Path] = []
    for key, item in media.items():
        folder = Path(out_dir) / key
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"step_{step:07d}"
        if isinstance(item, VideoMedia):
            clips = rgb_clips(item.frames)
            for i, clip in enumerate(clips):
                path = folder / f"{stem}_{i}.{video_format}"
                write_clip(clip.transpose(0, 2, 3, 1), path, item.fps)
                written.append(path)
            written.append(folder / f"{stem}_filmstrip.png")
            Image.fromarray(filmstrip(clips)).save(written[-1])
            continue
        written.append(folder / f"{stem}.png")
        Image.fromarray(image_grid(item.images)).save(written[-1])
        if item.boxes is not None:
            drawn = [
                draw_boxes(img, boxes, label_ids) for img, boxes in zip(images_uint8(item.images), item.boxes)
            ]
            stacked = torch.from_numpy(np.stack(drawn)).permute(0, 3, 1, 2).float() / 255
            written.append(folder / f"{stem}_layouts.png")
            Image.fromarray(image_grid(stacked)).save(written[-1])
        if item.captions is not None or item.boxes is not None:
            rows = [
                {
                    "caption": item.captions[i] if item.captions is not None else None,
                    "boxes": [asdict(b) for b in item.boxes[i]] if item.boxes is not None else None,
                }
                for i in range(item.images.shape[0])
            ]
            written.append(folder / f"{stem}_table.json")
            written[-1].write_text(json.dumps(rows, indent=1) + "\n")
    return written
