"""Frame decoding from video files: opencv (FFmpeg) first, decord (`VideoReader.get_batch`) as the fallback.

opencv comes first because it is the faster per-clip reader: in training order (a file opened per
clip) it loads a clip at about raw ffmpeg's speed, decord at 0.5-0.8x, as decord indexes every
packet at open (bench/data_decode.py). Both backends return RGB uint8 frames (T, H, W, 3) and seek
accurately (to the preceding keyframe, then decode forward), so a clip is the same whichever
backend read it, up to codec rounding. Decoder failures become `VideoDecodeError` with a short
human-readable reason, which the datasets record instead of crashing. A `ReaderCache` keeps readers
open between calls (one cache per process, e.g. per DataLoader worker), so clips from a file read
recently do not reopen it.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganforge.errors import UserError

BACKENDS = ("auto", "decord", "opencv")
AUTO_ORDER = ("opencv", "decord")  # what "auto" tries, in order (decord only where it is installed)
# One decode thread per reader: DataLoader workers provide the parallelism, and decord's default
# (one thread per core) oversubscribes the CPU once several workers decode at the same time.
DECODE_THREADS = 1


class VideoDecodeError(Exception):
    """A file that a backend cannot open or decode; `str(err)` is the reason."""


@dataclass(frozen=True)
class VideoInfo:
    """What index-time probing learned about one decodable video."""

    num_frames: int
    height: int
    width: int
    fps: float
    backend: str  # "decord" or "opencv": the backend that decoded it


def decord_available() -> bool:
    """Whether decord imports (it is missing on some platforms, e.g. macOS arm64 wheels)."""
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


_SOURCE_PREFIX = re.compile(r"^\[[\d:]+\]\s+\S+:\d+:\s*")  # decord's "[09:20:46] /src/x.cc:61: "


def _short(err: BaseException) -> str:
    """The last non-empty line of a (possibly multi-line C++) decoder message, at most 120 characters."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = _SOURCE_PREFIX.sub("", lines[-1]) if lines else type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _check_frames(frames: np.ndarray, count: int, backend: str) -> np.ndarray:
    if frames.ndim != 4 or frames.shape[0] != count or frames.shape[-1] != 3:
        raise VideoDecodeError(
            f"{backend} returned frames of shape {frames.shape}, expected ({count}, H, W, 3)"
        )
    return frames


# opencv: a clip starting at most this many frames after the open capture's position is reached by
# decoding forward instead of seeking (a seek goes back to the keyframe and decodes from there).
FORWARD_DECODE_LIMIT = 16


# ---------------------------------------------------------------------------------------------- decord
def _decord_reader(path: Path):  # noqa: ANN202 (decord is imported lazily)
    import decord

    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=DECODE_THREADS)
    except Exception as err:  # decord raises RuntimeError or its own DECORDError
        raise VideoDecodeError(f"cannot open ({_short(err)})") from err


def _decord_read(reader, indices: Sequence[int]) -> np.ndarray:  # noqa: ANN001 (decord.VideoReader)
    try:
        frames = reader.get_batch(list(indices)).asnumpy()
    except Exception as err:
        raise VideoDecodeError(f"frames {indices[0]}..{indices[-1]} do not decode ({_short(err)})") from err
    return _check_frames(frames, len(indices), "decord")


def _decord_probe(path: Path) -> VideoInfo:
    reader = _decord_reader(path)
    count = len(reader)
    if count < 1:
        raise VideoDecodeError("no video frames")
    try:
        ends = reader.get_batch([0, count - 1]).asnumpy()
    except Exception as err:
        raise VideoDecodeError(f"truncated or corrupt: frame {count - 1} of {count} does not decode") from err
    _check_frames(ends, 2, "decord")
    return VideoInfo(count, ends.shape[1], ends.shape[2], float(reader.get_avg_fps()), "decord")


# ---------------------------------------------------------------------------------------------- opencv
def _opencv_capture(path: Path):  # noqa: ANN202 (cv2.VideoCapture)
    import cv2

    # FFmpeg with DECODE_THREADS decoder threads: opencv's default thread pool (one per core) costs
    # ~20% of a 64x64 clip to set up at every open and oversubscribes the DataLoader workers' CPUs.
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, DECODE_THREADS])
    if not capture.isOpened():
        capture = cv2.VideoCapture(str(path))  # any other opencv backend
    if not capture.isOpened():
        raise VideoDecodeError("cannot open (not a video, or no video stream)")
    return capture


def _bgr_to_rgb(frame: np.ndarray, out: np.ndarray, position: int) -> None:
    """Write opencv's BGR (H, W, 3) `frame` into `out` (H, W, 3) as RGB (numpy's frame[..., ::-1] copy
    costs ~40x more: 5.6 ms of a 20-frame 256 px clip, more than decoding it)."""
    import cv2

    if frame.shape != out.shape or frame.dtype != np.uint8:
        raise VideoDecodeError(
            f"opencv frame {position} is {frame.dtype} {frame.shape}, expected {out.shape}"
        )
    cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=out)


def _opencv_read(capture, indices: Sequence[int]) -> np.ndarray:  # noqa: ANN001 (cv2.VideoCapture)
    """Seek to indices[0] (or decode forward to it when it is close ahead), then decode forward,
    keeping the requested frames (sorted, ascending)."""
    import cv2

    position = int(capture.get(cv2.CAP_PROP_POS_FRAMES))  # the next frame read() returns
    if not 0 <= int(indices[0]) - position <= FORWARD_DECODE_LIMIT:
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(indices[0]))
        position = int(indices[0])
    wanted, frames, kept = set(int(i) for i in indices), None, 0
    while position <= indices[-1]:
        if position in wanted:
            ok, frame = capture.read()
            if ok:
                if frames is None:
                    frames = np.empty((len(indices), *frame.shape[:2], 3), np.uint8)
                _bgr_to_rgb(frame, frames[kept], position)
                kept += 1
        else:
            ok = capture.grab()  # skipped frame: decode without the colour conversion
        if not ok:
            raise VideoDecodeError(f"frame {position} does not decode (opencv)")
        position += 1
    return _check_frames(frames, len(indices), "opencv")


def _opencv_probe(path: Path) -> VideoInfo:
    import cv2

    capture = _opencv_capture(path)
    count, fps = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), float(capture.get(cv2.CAP_PROP_FPS))
    capture.release()
    if count < 1:
        raise VideoDecodeError("no video frames (opencv)")
    try:  # each end from a fresh open: a seek back to frame 0 fails on a one-frame file
        first, _ = read_frames(path, [0], "opencv"), read_frames(path, [count - 1], "opencv")
    except VideoDecodeError as err:
        raise VideoDecodeError(f"truncated or corrupt: frame {count - 1} of {count} does not decode") from err
    return VideoInfo(count, first.shape[1], first.shape[2], fps, "opencv")


# ---------------------------------------------------------------------------------------------- public
# Per backend: open a reader of a path, read ascending frame indices from it, probe a path.
_OPEN: dict[str, Callable[[Path], object]] = {"decord": _decord_reader, "opencv": _opencv_capture}
_READ: dict[str, Callable[[object, Sequence[int]], np.ndarray]] = {
    "decord": _decord_read,
    "opencv": _opencv_read,
}
_PROBE: dict[str, Callable[[Path], VideoInfo]] = {"decord": _decord_probe, "opencv": _opencv_probe}


def _close(reader: object) -> None:
    if hasattr(reader, "release"):  # cv2.VideoCapture; decord readers close when collected
        reader.release()


def _first_that_decodes(backends: Sequence[str], attempt: Callable[[str], object]):  # noqa: ANN202
    """attempt(name) of the first of `backends` that raises no VideoDecodeError; else VideoDecodeError
    with each backend's reason, "name: reason; name: reason"."""
    reasons = []
    for name in backends:
        try:
            return attempt(name)
        except VideoDecodeError as err:
            reasons.append(f"{name}: {err}")
    raise VideoDecodeError("; ".join(reasons))


def resolve_backends(backend: str) -> tuple[str, ...]:
    """The backends to try, in order, for `backend` ("auto", "decord" or "opencv"); UserError if unusable.

    "auto" is AUTO_ORDER: opencv, then decord where it is installed.
    """
    if backend not in BACKENDS:
        raise UserError(f"vidgan.data: backend={backend!r}, expected one of {BACKENDS}")
    if backend == "auto":
        return tuple(name for name in AUTO_ORDER if name != "decord" or decord_available())
    if backend == "decord" and not decord_available():
        raise UserError("vidgan.data: backend='decord' but decord is not installed (use 'auto' or 'opencv')")
    return (backend,)


def probe_video(path: str | Path, backend: str = "auto") -> VideoInfo:
    """Open a video and decode its first and last frame with the first backend that manages.

    Raises VideoDecodeError(reason) when none can: an empty file, not a video, no video stream,
    or a truncated stream whose last frame does not decode.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise VideoDecodeError("empty file (0 bytes)")
    return _first_that_decodes(resolve_backends(backend), lambda name: _PROBE[name](path))


class ReaderCache:
    """Up to `capacity` open readers of this process, keyed by (path, backend); the least recently used
    is closed first. After a fork (a DataLoader worker) the cache starts empty: open decoders are
    never shared between processes, and pickling (spawned workers) keeps only the capacity.
    """

    def __init__(self, capacity: int = 8) -> None:
        if capacity < 1:
            raise UserError(f"vidgan.data: ReaderCache capacity={capacity} must be >= 1")
        self.capacity = capacity
        self.hits = self.misses = 0
        self._open: OrderedDict[tuple[str, str], object] = OrderedDict()
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        return {"capacity": self.capacity}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["capacity"])

    def get(self, path: Path, backend: str):  # noqa: ANN201 (a decord.VideoReader or cv2.VideoCapture)
        """The open reader of `path`, opened now (VideoDecodeError when it cannot be) or reused."""
        if os.getpid() != self._pid:
            self.__init__(self.capacity)
        key = (str(path), backend)
        if key in self._open:
            self.hits += 1
            self._open.move_to_end(key)
            return self._open[key]
        self.misses += 1
        reader = _OPEN[backend](path)
        self._open[key] = reader
        while len(self._open) > self.capacity:
            _close(self._open.popitem(last=False)[1])
        return reader

    def discard(self, path: Path, backend: str) -> None:
        """Close the reader of `path` (after a decode error it may be in a bad state)."""
        reader = self._open.pop((str(path), backend), None)
        if reader is not None:
            _close(reader)


def read_frames(
    path: str | Path, indices: Sequence[int], backend: str, readers: ReaderCache | None = None
) -> np.ndarray:
    """Frames at ascending `indices` as RGB uint8 (T, H, W, 3), decoded by "decord" or "opencv".

    With `readers`, the file's reader is taken from (and left open in) that cache; without, the
    file is opened for this call only.
    """
    if backend not in _READ:
        raise ValueError(f"vidgan.data: read_frames backend={backend!r}, expected 'decord' or 'opencv'")
    path = Path(path)
    if readers is None:
        reader = _OPEN[backend](path)
        try:
            return _READ[backend](reader, indices)
        finally:
            _close(reader)
    reader = readers.get(path, backend)
    try:
        return _READ[backend](reader, indices)
    except VideoDecodeError:
        readers.discard(path, backend)
        raise


def read_clip(
    path: str | Path, indices: Sequence[int], backends: Sequence[str], readers: ReaderCache | None = None
) -> np.ndarray:
    """RGB uint8 (T, H, W, 3) frames at ascending `indices`, read by the first of `backends` that manages
    (`read_frames` with each in turn); VideoDecodeError naming each backend's reason when none does."""
    return _first_that_decodes(backends, lambda name: read_frames(path, indices, name, readers))
