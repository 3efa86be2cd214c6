"""TFRecord files and `tf.train.Example` / `SequenceExample` features, read without TensorFlow.

A TFRecord file is a sequence of records, each framed as
`uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)` (little-endian).
The data is a serialized protocol buffer (tensorflow/core/example/{example,feature}.proto):

    Example         { Features features = 1; }
    SequenceExample { Features context = 1; FeatureLists feature_lists = 2; }
    Features        { map<string, Feature> feature = 1; }  // entry: { string key = 1; Feature value = 2; }
    Feature         { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                                   Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }   FloatList { repeated float value = 1; }
    Int64List { repeated int64 value = 1; }

Field 1 is `Features` in both messages, so `features(record)` reads an Example's features and a
SequenceExample's context alike; the wire format is parsed directly (a few dozen lines, no schema
compiler and no dependency beyond numpy).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ganforge.errors import UserError
from vidgan.data.crc32c import masked_crc32c

Feature = list[bytes] | np.ndarray  # bytes_list values, or float32 / int64 values


class TFRecordError(UserError):
    """A record that cannot be read: bad framing, checksum or protocol buffer; `str(err)` is the reason."""


# ---------------------------------------------------------------------------------------------- framing
def _read_exactly(stream: BinaryIO, count: int, what: str) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise TFRecordError(f"file ends inside the {what} ({len(data)} of {count} bytes)")
    return data


def read_records(path: str | Path) -> Iterator[bytes | TFRecordError]:
    """Each record's data in file order; a record whose data checksum fails yields a TFRecordError instead.

    A bad length checksum or a cut-off record loses the framing: it yields its TFRecordError and
    the file ends there.
    """
    with open(path, "rb") as stream:
        while header := stream.read(12):
            try:
                if len(header) != 12:
                    raise TFRecordError(f"file ends inside a record header ({len(header)} of 12 bytes)")
                length_bytes, (length_crc,) = header[:8], struct.unpack("<I", header[8:])
                if masked_crc32c(length_bytes) != length_crc:
                    raise TFRecordError(
                        "corrupt record length (checksum mismatch); the rest of the file is lost"
                    )
                (length,) = struct.unpack("<Q", length_bytes)
                data = _read_exactly(stream, length, "record data")
                (data_crc,) = struct.unpack("<I", _read_exactly(stream, 4, "record checksum"))
            except TFRecordError as err:
                yield err
                return
            yield data if masked_crc32c(data) == data_crc else TFRecordError("data checksum mismatch")


def count_records(path: str | Path) -> int:
    """Records in a file, from the framing alone (lengths are trusted; nothing is checksummed)."""
    count = 0
    with open(path, "rb") as stream:
        while len(header := stream.read(12)) == 12:
            stream.seek(struct.unpack("<Q", header[:8])[0] + 4, 1)
            count += 1
    return count


# ---------------------------------------------------------------------------------------------- protobuf
def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise TFRecordError("protocol buffer ends inside a varint")
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return result, pos


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of a message: bytes for wire type 2, int for 0, 1 and 5."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        else:
            raise TFRecordError(f"unsupported protocol buffer wire type {wire} (field {number})")
        if pos > len(data):
            raise TFRecordError(f"protocol buffer ends inside field {number}")
        yield number, wire, value


def _feature(data: bytes) -> Feature:
    """A `Feature`: its bytes values, or its float32 / int64 values as an array (packed or not)."""
    for kind, _, body in _fields(data):
        if kind == 1:
            return [value for number, wire, value in _fields(body) if number == 1 and wire == 2]
        if kind == 2:
            values = [v for n, w, v in _fields(body) if n == 1]
            packed = b"".join(v if isinstance(v, bytes) else struct.pack("<I", v) for v in values)
            return np.frombuffer(packed, dtype="<f4").astype(np.float32)
        if kind == 3:
            ints = []
            for number, wire, value in _fields(body):
                if number != 1:
                    continue
                if wire == 0:
                    ints.append(value)
                else:  # packed varints
                    pos = 0
                    while pos < len(value):
                        item, pos = _varint(value, pos)
                        ints.append(item)
            return np.array(ints, dtype=np.uint64).astype(np.int64)  # two's complement
    return []


def features(record: bytes) -> dict[str, Feature]:
    """The features of a serialized `Example`, or the context features of a `SequenceExample`."""
    out: dict[str, Feature] = {}
    for number, wire, body in _fields(record):
        if number != 1 or wire != 2:
            continue
        for entry_number, entry_wire, entry in _fields(body):
            if entry_number != 1 or entry_wire != 2:
                continue
            key, value = None, b""
            for field, _, item in _fields(entry):
                if field == 1:
                    key = item.decode("utf-8")
                elif field == 2:
                    value = item
            if key is None:
                raise TFRecordError("a feature map entry has no key")
            out[key] = _feature(value)
    return out
