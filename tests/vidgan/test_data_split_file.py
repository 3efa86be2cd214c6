"""Split lists as Kinetics and UCF-101 write them: spaces and `#` in paths, an optional integer label."""

from __future__ import annotations

from pathlib import Path

from vidgan.data import VideoFolderDataset
from vidgan.data.split_file import SplitLine, read_split_file, read_split_lines


def test_paths_keep_spaces_and_hashes_and_only_a_trailing_integer_is_a_label(tmp_path):
    split = tmp_path / "trainlist.txt"
    split.write_text(
        "# Kinetics-style list, a comment line\n"
        "air drumming/--Nn0lsB1Lo_000020_000030.mp4 0\n"
        "\n"
        "playing guitar/take #2 (live).mp4\n"
        "  playing guitar/clip 7.mp4   12  \n"
        "playing guitar/take 2b.mp4\n"
        "abseiling/#hash first.mp4 -1\n"
    )
    assert read_split_lines(split) == [
        SplitLine("air drumming/--Nn0lsB1Lo_000020_000030.mp4", 0, 2),
        SplitLine("playing guitar/take #2 (live).mp4", None, 4),
        SplitLine("playing guitar/clip 7.mp4", 12, 5),
        SplitLine("playing guitar/take 2b.mp4", None, 6),  # "2b" is not an integer: part of the name
        SplitLine("abseiling/#hash first.mp4", -1, 7),
    ]
    assert read_split_file(split, tmp_path)[1] == tmp_path / "playing guitar" / "take #2 (live).mp4"


def test_kinetics_class_folders_with_spaces_through_the_dataset(tmp_path, make_video):
    root = tmp_path / "kinetics"
    names = ["air drumming/a b #1.mp4", "playing guitar/x y.mp4", "playing guitar/#z.mp4"]
    for name in names:
        make_video(root / name, num_frames=8)
    split = tmp_path / "train list.txt"
    split.write_text("# class/file label\n" + "".join(f"{name} {i}\n" for i, name in enumerate(names)))
    dataset = VideoFolderDataset(root, 2, 2, image_size=16, split_file=split, return_labels=True, seed=1)
    assert dataset.classes == ["air drumming", "playing guitar"] and dataset.skipped == []
    assert [(str(e.path.relative_to(root)), e.label) for e in dataset.entries] == [
        ("air drumming/a b #1.mp4", 0),
        ("playing guitar/x y.mp4", 1),
        ("playing guitar/#z.mp4", 1),
    ]
    context, target, label = dataset[2]
    assert context.shape == (2, 3, 16, 16) and target.shape == (2, 3, 16, 16) and label == 1
    whole_tree = VideoFolderDataset(root, 2, 2, image_size=16)  # class folders without a list
    assert sorted(Path(e.path).name for e in whole_tree.entries) == ["#z.mp4", "a b #1.mp4", "x y.mp4"]
