"""A probe-once index of a video folder: frame count, fps, size and decoder per file, or why it is skipped.

`ROOT/.vidgan_index.json` (or a path given) maps each file, relative to ROOT, to what probing it
found, keyed by its size and mtime: an entry whose file changed size or mtime is stale and is
probed again. Files are probed by a pool of processes. Under DDP only rank 0 probes and writes;
the other ranks wait until the index covers their files and read it (`load_or_wait`), so a
restart or a requeued job starts without probing anything.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from vidgan.data.parallel import parallel_map
from vidgan.data.video_reader import VideoDecodeError, VideoInfo, probe_video, resolve_backends

log = logging.getLogger("vidgan.data")

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm")
INDEX_NAME = ".vidgan_index.json"
INDEX_FORMAT, INDEX_VERSION = "vidgan-video-index", 1
MIN_FILES_PER_WORKER = 8  # below this, probing in this process beats starting a pool
WAIT_POLL_S = 1.0
WAIT_TIMEOUT_S = 6 * 3600.0  # ranks > 0 wait this long for rank 0's first build (Kinetics: ~1 h)


@dataclass(frozen=True)
class IndexEntry:
    """What probing one file found: its stat key, and either VideoInfo or the reason it is skipped."""

    size: int
    mtime_ns: int
    info: VideoInfo | None
    skip: str | None

    def matches(self, stat: os.stat_result) -> bool:
        """Whether the file still has the size and mtime it was probed at."""
        return (self.size, self.mtime_ns) == (stat.st_size, stat.st_mtime_ns)

    def to_json(self) -> dict:
        return {"size": self.size, "mtime_ns": self.mtime_ns, "skip": self.skip} | (
            asdict(self.info) if self.info is not None else {}
        )

    @classmethod
    def from_json(cls, data: dict) -> IndexEntry:
        info = None
        if data["skip"] is None:
            fields = ("num_frames", "height", "width", "fps", "backend")
            info = VideoInfo(**{name: data[name] for name in fields})
        return cls(int(data["size"]), int(data["mtime_ns"]), info, data["skip"])


def video_files(root: Path) -> list[Path]:
    """Every file under root (following folder links) with an extension in VIDEO_EXTENSIONS, sorted."""
    found = []
    for folder, _, names in os.walk(root, followlinks=True):
        found += [
            Path(folder, name) for name in names if os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS
        ]
    return sorted(found)


def probe_entry(path: Path, backend: str = "auto") -> IndexEntry:
    """Stat and probe one file; an undecodable file gives an entry with its skip reason."""
    try:
        stat = path.stat()
    except FileNotFoundError:  # deleted since it was listed: an entry that never matches a file
        return IndexEntry(-1, -1, None, "missing: deleted while the index was built")
    try:
        return IndexEntry(stat.st_size, stat.st_mtime_ns, probe_video(path, backend), None)
    except VideoDecodeError as err:
        return IndexEntry(stat.st_size, stat.st_mtime_ns, None, str(err))


class VideoIndex:
    """The index file of one video root: `entries` maps a path relative to `root` to its IndexEntry.

    An index probed with other decoders (another `backend` option, decord installed or removed
    since, or "auto" written when it meant decord first), of another version, or unreadable, loads
    empty, so every file is probed again.
    """

    def __init__(self, root: str | Path, path: str | Path | None = None, backend: str = "auto") -> None:
        self.root = Path(root)
        self._prefix = os.path.join(str(self.root), "")  # "root/"
        self.path = Path(path) if path is not None else self.root / INDEX_NAME
        self.backend = backend
        self.decoders = list(resolve_backends(backend))  # what "auto" means here and now
        self.entries: dict[str, IndexEntry] = {}

    def key(self, file: Path) -> str:
        """`file` relative to root (absolute when outside it), the index's name for it."""
        text = str(file)  # string slicing: pathlib's relative_to costs ~10x more, per file of 400,000
        return text[len(self._prefix) :] if text.startswith(self._prefix) else text

    def fresh(self, file: Path, stat: os.stat_result | None = None) -> IndexEntry | None:
        """The entry of `file` if it was probed at the file's current size and mtime, else None."""
        entry = self.entries.get(self.key(file))
        if entry is None:
            return None
        return entry if entry.matches(stat if stat is not None else file.stat()) else None

    def stale(self, files: Iterable[Path]) -> list[Path]:
        """The existing files among `files` without a fresh entry (missing files are not probed)."""
        out = []
        for file in files:
            try:
                stat = file.stat()
            except FileNotFoundError:
                continue
            if self.fresh(file, stat) is None:
                out.append(file)
        return out

    def load(self) -> VideoIndex:
        """Read the file, keeping no entries when it is absent, unreadable or from other decoders."""
        self.entries = {}
        try:
            data = json.loads(self.path.read_text())
            header = (data["format"], data["version"], data["decoders"])
            if header != (INDEX_FORMAT, INDEX_VERSION, self.decoders):
                return self
            self.entries = {key: IndexEntry.from_json(value) for key, value in data["files"].items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("vidgan.data: ignoring unreadable video index '%s' (%s)", self.path, err)
        return self

    def save(self) -> None:
        """Write atomically (a temporary file renamed over the old one): readers see old or new, whole."""
        data = {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            "decoders": self.decoders,
            "files": {key: entry.to_json() for key, entry in sorted(self.entries.items())},
        }
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(partial, self.path)

    def probe(
        self,
        files: list[Path],
        workers: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        """Probe `files` (e.g. `self.stale(...)`), record their entries and save when there were any."""
        entries = parallel_map(
            probe_entry, files, self.backend, workers=workers, min_items_per_worker=MIN_FILES_PER_WORKER
        )
        for file, entry in zip(files, entries):
            self.entries[self.key(file)] = entry
            if on_progress is not None:
                on_progress(1)
        if files:
            self.save()


def load_or_build(
    root: Path,
    files: list[Path],
    *,
    rank: int = 0,
    backend: str = "auto",
    index_path: str | Path | None = None,
    workers: int | None = None,
) -> tuple[VideoIndex, int]:
    """The index of `root` covering `files`, and how many files this process probed for it.

    Rank 0 probes the stale files and writes the index (a warning when it cannot write it); ranks
    > 0 never probe: they wait, polling, until the file covers every existing one of `files`.
    """
    index = VideoIndex(root, index_path, backend).load()
    if rank > 0:
        return wait_for(index, files), 0
    todo = index.stale(files)
    if todo:
        log.info("vidgan.data: probing %d of %d videos under '%s'", len(todo), len(files), root)
    try:
        index.probe(todo, workers)
    except OSError as err:  # a read-only dataset: train anyway, probing again at every start
        log.warning(
            "vidgan.data: cannot write the video index '%s' (%s); ranks > 0 will wait", index.path, err
        )
    return index, len(todo)


def wait_for(index: VideoIndex, files: list[Path], timeout_s: float = WAIT_TIMEOUT_S) -> VideoIndex:
    """Reload `index` until it has a fresh entry for every existing file of `files` (or TimeoutError).

    The files are stat-ed again only when the index file changed, so waiting ranks do not load a
    shared filesystem with a stat of every video each second.
    """
    deadline, seen, missing = time.monotonic() + timeout_s, None, len(files)
    while True:
        try:
            stat = index.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != seen:
            seen = stamp
            missing = len(index.load().stale(files))
            if not missing:
                return index
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"vidgan.data: waited {timeout_s:.0f} s for rank 0 to write the video index '{index.path}' "
                f"({missing} of {len(files)} files still missing); is it on a filesystem all ranks share? "
                "(`vidgan data index ROOT` builds it ahead of training)"
            )
        time.sleep(WAIT_POLL_S)
