"""`vidgan data ucf101`: check a UCF-101 tree against `classInd.txt` and its split lists.

UCF-101 ships as `UCF-101/<Class>/v_<Class>_gGG_cCC.avi` plus `ucfTrainTestlist/` with
`classInd.txt` (lines `N ClassName`, 1-based), `trainlist0{1,2,3}.txt` (lines `Class/file.avi N`)
and `testlist0{1,2,3}.txt` (lines `Class/file.avi`). The check reports:
- class folders missing, extra, or differing from classInd.txt only in case (the published archive
  has folder `HandStandPushups` for class `HandstandPushups`);
- whether sorted folder order gives classInd's numbering, which VideoFolderDataset's labels use;
- per split list: files it names that are missing, and labels that disagree with classInd.txt;
- files that do not decode, from the root's video index (built here if needed, so training starts
  without probing).
"""

from __future__ import annotations

from pathlib import Path

from ganforge.errors import UserError
from vidgan.data.split_file import read_split_lines
from vidgan.data.video_index import load_or_build, video_files

CLASS_INDEX = "classInd.txt"
SPLIT_PATTERNS = ("trainlist*.txt", "testlist*.txt")


def find_split_dir(src: Path, splits: Path | None) -> Path:
    """The folder holding classInd.txt: `splits`, else src, src/ucfTrainTestlist or its sibling."""
    candidates = (
        [splits] if splits is not None else [src, src / "ucfTrainTestlist", src.parent / "ucfTrainTestlist"]
    )
    for folder in candidates:
        if (folder / CLASS_INDEX).is_file():
            return folder
    raise FileNotFoundError(
        f"vidgan data ucf101: no {CLASS_INDEX} in {', '.join(repr(str(c)) for c in candidates)} "
        "(use --splits DIR)"
    )


def read_class_index(path: Path) -> dict[str, int]:
    """classInd.txt as {class name: 1-based number}; UserError naming the line when one is malformed."""
    classes = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[0].isdigit():
            raise UserError(f"vidgan data ucf101: {path}:{number}: {line.strip()!r}, expected 'N ClassName'")
        classes[fields[1]] = int(fields[0])
    return classes


def _check_split(path: Path, src: Path, numbers: dict[str, int], folders: dict[str, str]) -> dict:
    """One split list: files missing, files found only under a differently-cased folder, wrong labels.

    `numbers` and `folders` are keyed by lower-case class name (classInd number; folder on disk).
    """
    missing, wrong_case, bad_labels = [], [], []
    lines = read_split_lines(path)
    for line in lines:
        listed = Path(line.path)
        class_key = listed.parts[0].lower()
        if not (src / listed).is_file():
            on_disk = src / folders.get(class_key, listed.parts[0]) / Path(*listed.parts[1:])
            (wrong_case if on_disk.is_file() else missing).append(line.path)
        expected = numbers.get(class_key)
        if line.label is not None and line.label != expected:
            bad_labels.append(f"{path.name}:{line.number}: label {line.label}, classInd.txt says {expected}")
    return {
        "lines": len(lines),
        "missing_files": missing,
        "wrong_case_paths": wrong_case,
        "bad_labels": bad_labels,
    }


def check_ucf101(src: str | Path, splits: str | Path | None = None, workers: int | None = None) -> dict:
    """The report described in the module docstring, as a json-ready dict with a `problems` count."""
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"vidgan data ucf101: --src '{src}' is not a directory")
    split_dir = find_split_dir(src, Path(splits) if splits is not None else None)
    classes = read_class_index(split_dir / CLASS_INDEX)
    numbers = {name.lower(): number for name, number in classes.items()}
    names = {name.lower(): name for name in classes}
    dataset_classes = sorted(p.name for p in src.iterdir() if p.is_dir())  # VideoFolderDataset.classes
    folders = {name.lower(): name for name in dataset_classes if name != split_dir.name}
    report = {
        "src": str(src),
        "split_dir": str(split_dir),
        "classes": len(classes),
        "class_folders": len(folders),
        "missing_class_folders": sorted(names[key] for key in names.keys() - folders.keys()),
        "extra_folders": sorted(folders[key] for key in folders.keys() - names.keys()),
        "case_mismatches": [
            f"classInd.txt '{names[key]}', folder '{folders[key]}'"
            for key in sorted(folders.keys() & names.keys())
            if names[key] != folders[key]
        ],
        # VideoFolderDataset labels a class by its folder's place in sorted order
        "labels_match_class_numbers": all(
            key in folders and dataset_classes.index(folders[key]) == number - 1
            for key, number in numbers.items()
        ),
        "splits": {},
    }
    for pattern in SPLIT_PATTERNS:
        for path in sorted(split_dir.glob(pattern)):
            report["splits"][path.name] = _check_split(path, src, numbers, folders)
    files = video_files(src)
    index, _ = load_or_build(src, files, workers=workers)
    report["videos"] = len(files)
    entries = {index.key(file): index.fresh(file) for file in files}
    report["undecodable"] = {key: entry.skip for key, entry in entries.items() if entry and entry.skip}
    report["problems"] = (
        len(report["missing_class_folders"]) + len(report["extra_folders"]) + len(report["case_mismatches"])
        + sum(len(s["missing_files"]) + len(s["wrong_case_paths"]) + len(s["bad_labels"])
              for s in report["splits"].values())
        + len(report["undecodable"]) + (not report["labels_match_class_numbers"])
    )  # fmt: skip
    return report
