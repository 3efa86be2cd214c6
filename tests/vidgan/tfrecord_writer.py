"""TFRecord files of BAIR-style SequenceExamples, written by hand for the tests (independent of vidgan.data).

The protocol buffer is encoded field by field and the CRC-32C is a plain bitwise loop, so the
reader under test shares no code with this writer.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def crc32c_bitwise(data: bytes) -> int:
    register = 0xFFFFFFFF
    for byte in data:
        register ^= byte
        for _ in range(8):
            register = (register >> 1) ^ 0x82F63B78 if register & 1 else register >> 1
    return register ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    crc = crc32c_bitwise(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def bytes_feature(*values: bytes) -> bytes:
    return field(1, b"".join(field(1, v) for v in values))  # Feature.bytes_list = BytesList{value}


def float_feature(values: np.ndarray) -> bytes:
    return field(2, field(1, np.asarray(values, "<f4").tobytes()))  # Feature.float_list, packed


def sequence_example(context: dict[str, bytes]) -> bytes:
    """SequenceExample{context = Features{feature map}} from encoded Feature messages."""
    entries = b"".join(field(1, field(1, key.encode()) + field(2, value)) for key, value in context.items())
    return field(1, entries)


def bair_record(frames: np.ndarray, seed: int = 0) -> bytes:
    """A softmotion30_44k record of frames (T, 64, 64, 3): aux1 and main images, actions, positions."""
    rng, context = np.random.default_rng(seed), {}
    for step, frame in enumerate(frames):
        context[f"{step}/action"] = float_feature(rng.normal(size=4))
        context[f"{step}/endeffector_pos"] = float_feature(rng.normal(size=3))
        context[f"{step}/image_aux1/encoded"] = bytes_feature(frame.tobytes())
        context[f"{step}/image_main/encoded"] = bytes_feature(frame[::-1].tobytes())
    return sequence_example(context)


def frame_record(data: bytes, corrupt_data_crc: bool = False) -> bytes:
    """One TFRecord: length, masked CRC of the length, data, masked CRC of the data."""
    length = struct.pack("<Q", len(data))
    data_crc = masked(data) ^ (1 if corrupt_data_crc else 0)
    return length + struct.pack("<I", masked(length)) + data + struct.pack("<I", data_crc)


def write_tfrecord(path: Path, records: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(records))
    return path
