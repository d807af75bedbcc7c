"""The on-disk code file (.lmxc): magic, version, JSON header, packed little-endian codes, CRC32. No pickle.

Layout: b"LMXC" | uint16 version | uint32 header length | UTF-8 JSON header | codes | uint32 CRC32 of the
codes. Codes are (B, K, F) stored as uint16 (codebook_size <= 65536) or uint32, C order.
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import atomic_path
from ..errors import ModelFileError

MAGIC = b"LMXC"
VERSION = 1
_PRE = struct.Struct("<4sHI")


def write_codes(path, codes: torch.Tensor, header: dict) -> None:
    """Atomically write codes (K, F) or (B, K, F) int with a JSON-serialisable header (model id, sample_rate,
    hop_length, original_length, codebook_size, chunking, ...). Shape and dtype are added to the header."""
    c = codes.detach().cpu()
    batched = c.dim() == 3
    if c.dim() == 2:
        c = c[None]
    if c.dim() != 3:
        raise ValueError(f"codes must be (K, F) or (B, K, F), got {tuple(codes.shape)}")
    size = int(header.get("codebook_size", int(c.max()) + 1 if c.numel() else 1))
    dtype = "<u2" if size <= 65536 else "<u4"
    if c.numel() and (int(c.min()) < 0 or int(c.max()) >= size):
        raise ValueError(f"codes outside [0, {size})")
    arr = c.numpy().astype(dtype)
    h = dict(header)
    h.update(shape=list(arr.shape), batched=batched, dtype=dtype, codebook_size=size,
             num_codebooks=arr.shape[1], frames=arr.shape[2])
    hb = json.dumps(h, sort_keys=True).encode()
    payload = arr.tobytes()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(_PRE.pack(MAGIC, VERSION, len(hb)))
            f.write(hb)
            f.write(payload)
            f.write(struct.pack("<I", zlib.crc32(payload)))


def read_header(path) -> dict:
    return _read(path, header_only=True)[1]


def read_codes(path) -> tuple[torch.Tensor, dict]:
    """(codes int64 (K, F) or (B, K, F) as written, header). ModelFileError for anything malformed."""
    return _read(path)


def _read(path, header_only: bool = False):
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such code file")
    data = path.read_bytes()
    if len(data) < _PRE.size or data[:4] != MAGIC:
        raise ModelFileError(f"{path}: not a latentmix code file (bad magic)")
    _, version, hlen = _PRE.unpack_from(data)
    if version > VERSION:
        raise ModelFileError(f"{path}: code file version {version} is newer than this latentmix supports "
                             f"({VERSION}); upgrade latentmix")
    if len(data) < _PRE.size + hlen:
        raise ModelFileError(f"{path}: truncated code file (header)")
    try:
        header = json.loads(data[_PRE.size:_PRE.size + hlen].decode())
        shape, dtype = [int(s) for s in header["shape"]], header["dtype"]
        if dtype not in ("<u2", "<u4"):
            raise ValueError(dtype)
    except (ValueError, KeyError, UnicodeDecodeError, TypeError):
        raise ModelFileError(f"{path}: corrupt code file header") from None
    if header_only:
        return None, header
    start = _PRE.size + hlen
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if len(data) != start + nbytes + 4:
        raise ModelFileError(f"{path}: truncated or padded code file ({len(data)} bytes, expected "
                             f"{start + nbytes + 4})")
    payload = data[start:start + nbytes]
    (crc,) = struct.unpack_from("<I", data, start + nbytes)
    if zlib.crc32(payload) != crc:
        raise ModelFileError(f"{path}: code file is corrupt (CRC mismatch)")
    arr = np.frombuffer(payload, dtype=dtype).reshape(shape).astype(np.int64)
    codes = torch.from_numpy(arr)
    return (codes if header.get("batched") else codes[0]), header
