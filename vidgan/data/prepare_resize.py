"""`vidgan data resize`: Kinetics or UCF-101 folders to small mp4s, the same class folders and names.

DVD-GAN-FP trains on 64x64 clips: decoding full-size videos and resizing every clip on the fly
spends most of the decode on pixels that are thrown away. ffmpeg scales each video once so that
its short side is `size` (aspect kept, the long side rounded to even; area filter), optionally
resamples it to `fps`, drops audio and writes H.264 (CRF 18, yuv420p). The square centre crop is
left to the loader, which crops every clip anyway. `a/b c.avi` becomes `OUT/a/b c.mp4`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from ganforge.errors import UserError
from vidgan.data.parallel import parallel_map
from vidgan.data.prepare import PrepareSummary, atomic_output
from vidgan.data.video_index import video_files
from vidgan.data.video_reader import VideoDecodeError, probe_video

SUMMARY = "resize_summary.json"


def ffmpeg_resize_args(source: Path, target: Path, size: int, fps: float | None) -> list[str]:
    """The ffmpeg command scaling `source`'s short side to `size` (and to `fps`) into mp4 `target`."""
    scale = f"scale=w='if(lte(iw,ih),{size},-2)':h='if(lte(iw,ih),-2,{size})':flags=area"
    filters = scale if fps is None else f"{scale},fps={fps:g}"
    return [
        "ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(source), "-map", "0:v:0", "-an", "-sn",
        "-vf", filters, "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
        "-threads", "1", "-f", "mp4", str(target),
    ]  # fmt: skip


def resize_one(job: tuple[Path, Path], size: int, fps: float | None) -> str | None:
    """Write job's target from its source; None when done, else the reason it failed (no output left)."""
    source, target = job
    try:
        with atomic_output(target) as partial:
            done = subprocess.run(ffmpeg_resize_args(source, partial, size, fps), capture_output=True)
            if done.returncode != 0:
                lines = done.stderr.decode(errors="replace").strip().splitlines()
                raise VideoDecodeError(f"ffmpeg failed ({lines[-1][:160] if lines else done.returncode})")
            probe_video(partial)  # the output decodes from its first to its last frame
    except VideoDecodeError as err:
        return str(err)
    return None


def resize_videos(
    src: str | Path,
    out: str | Path,
    size: int = 64,
    fps: float | None = None,
    workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> PrepareSummary:
    """Resize every video under src into out (see the module docstring) and write out/resize_summary.json.

    `on_progress(1)` after each video. Resumable: outputs that exist are complete (written under a
    temporary name, then renamed) and are skipped; failed inputs are listed with their reasons.
    """
    src, out = Path(src), Path(out)
    if size < 8:
        raise UserError(f"vidgan data resize: size={size} must be >= 8")
    if fps is not None and fps <= 0:
        raise UserError(f"vidgan data resize: fps={fps} must be > 0")
    if not src.is_dir():
        raise FileNotFoundError(f"vidgan data resize: --src '{src}' is not a directory")
    summary = PrepareSummary("resize", {"src": str(src), "out": str(out), "size": size, "fps": fps})
    advance = on_progress if on_progress is not None else (lambda count: None)
    jobs, claimed = [], {}
    for source in video_files(src):
        relative = source.relative_to(src).as_posix()
        target = out / Path(relative).with_suffix(".mp4")
        if target in claimed:
            summary.fail(relative, f"same output name as '{claimed[target]}'")
            advance(1)
        elif target.is_file():
            claimed[target] = relative
            summary.already_done += 1
            advance(1)
        else:
            claimed[target] = relative
            jobs.append((source, target))
    for (source, _), reason in zip(jobs, parallel_map(resize_one, jobs, size, fps, workers=workers)):
        if reason is None:
            summary.written += 1
        else:
            summary.fail(source.relative_to(src).as_posix(), reason)
        advance(1)
    summary.write(out / SUMMARY)
    return summary
