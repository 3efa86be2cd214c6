"""Real video files for the vidgan data tests, written by ffmpeg from frames whose content we know.

Each frame shows a red 8x8 square on a dark background at a position unique to its frame index,
so a decoded frame identifies itself and a wrong seek is caught.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

CODECS = {
    "h264": ("-c:v", "libx264", "-g", "4", "-pix_fmt", "yuv420p"),  # keyframe every 4 frames, B-frames on
    "mjpeg": ("-c:v", "mjpeg", "-q:v", "2"),
}
BACKGROUND, SQUARE = 16, (240, 40, 40)


def square_frames(num_frames: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Known content, RGB uint8 (T, H, W, 3): the square's top-left is (8 + 2 (t mod 12), 2 t) in frame t."""
    frames = np.full((num_frames, height, width, 3), BACKGROUND, dtype=np.uint8)
    for t in range(num_frames):
        y, x = 8 + 2 * (t % 12), 2 * t
        frames[t, y : y + 8, x : x + 8] = SQUARE
    return frames


def write_video(path: Path, frames: np.ndarray, codec: str = "h264", fps: int = 10) -> Path:
    """Encode RGB uint8 frames (T, H, W, 3) with ffmpeg, piping raw frames to it."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed: run `make apt` (apt-get install ffmpeg)")
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"]
    cmd += ["-r", str(fps), "-i", "-", *CODECS[codec], str(path)]
    subprocess.run(cmd, input=frames.tobytes(), check=True, timeout=60)
    return path


@pytest.fixture(scope="session")
def make_video() -> Callable[..., np.ndarray]:
    """make_video(path, num_frames=24, height=48, width=64, codec="h264") -> the frames it wrote."""

    def make(
        path: Path, num_frames: int = 24, height: int = 48, width: int = 64, codec: str = "h264"
    ) -> np.ndarray:
        frames = square_frames(num_frames, height, width)
        write_video(path, frames, codec)
        return frames

    return make


@pytest.fixture(scope="session")
def reference_frames() -> np.ndarray:
    """The 24 frames (24, 48, 64, 3) every shared test video shows."""
    return square_frames(24)


@pytest.fixture(scope="session")
def video_files(tmp_path_factory: pytest.TempPathFactory, reference_frames: np.ndarray) -> dict[str, Path]:
    """One 24-frame 64x48 clip per container: H.264 mp4 and mkv (keyframe interval 4), MJPEG avi."""
    root = tmp_path_factory.mktemp("videos")
    return {
        "mp4": write_video(root / "square.mp4", reference_frames),
        "mkv": write_video(root / "square.mkv", reference_frames),
        "avi": write_video(root / "square.avi", reference_frames, "mjpeg"),
    }


@pytest.fixture(scope="session")
def class_root(tmp_path_factory: pytest.TempPathFactory, reference_frames: np.ndarray) -> Path:
    """root/red/{a.mp4, b.avi}, root/blue/c.mp4 (frames reversed): a Kinetics/UCF-style class-folder tree."""
    root = tmp_path_factory.mktemp("classes")
    write_video(root / "red" / "a.mp4", reference_frames)
    write_video(root / "red" / "b.avi", reference_frames, "mjpeg")
    write_video(root / "blue" / "c.mp4", reference_frames[::-1].copy())
    return root
