"""The on-disk code file (.lmxc): magic, version, JSON header, bit-packed codes, CRC32. No pickle.

Layout: b"LMXC" | uint16 version | uint32 header length | UTF-8 JSON header | codes | uint32 CRC32 of the
codes. Version 2 packs the (B, K, F) codes, C order, at ceil(log2 codebook_size) bits each (LSB first), so a
file's size is its bitrate (plus the header); version 1 files (uint16/uint32 codes) are still read.

Codes are (B, K, F) on both sides: write_codes takes that shape and read_codes returns it, whatever the file
(a file holding one signal reads back as (1, K, F)). The header a codec writes comes from its contract,
`CodecModel.code_header` (codec/base.py).
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelFileError
from ..fileio import atomic_path
from ..validation import MAX_CODES, CodeHeader, validate

MAGIC = b"LMXC"
VERSION = 2
_PRE = struct.Struct("<4sHI")


def write_codes(path, codes: torch.Tensor, header: dict) -> None:
    """Atomically write codes (B, K, F) int with a JSON-serialisable header (`CodecModel.code_header`: model id,
    sample_rate, hop_length, original_length, codebook_size, chunking, ...). Shape, dtype, num_codebooks and
    frames are added to the header."""
    c = codes.detach().cpu()
    if c.dim() != 3:
        raise ValueError(f"codes must be (batch, codebooks, frames), got {tuple(codes.shape)}")
    size = int(header.get("codebook_size", int(c.max()) + 1 if c.numel() else 1))
    if c.numel() and (int(c.min()) < 0 or int(c.max()) >= size):
        raise ValueError(f"codes outside [0, {size})")
    bits = code_bits(size)
    h = dict(header)
    # batched: read by latentmix versions whose read_codes squeezed unbatched files (this one ignores it)
    h.update(shape=list(c.shape), batched=True, dtype=f"bits{bits}", codebook_size=size,
             num_codebooks=c.shape[1], frames=c.shape[2])
    hb = json.dumps(h, sort_keys=True).encode()
    payload = pack_bits(c.numpy().reshape(-1), bits)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(_PRE.pack(MAGIC, VERSION, len(hb)))
            f.write(hb)
            f.write(payload)
            f.write(struct.pack("<I", zlib.crc32(payload)))


def code_bits(codebook_size: int) -> int:
    """Bits per code: ceil(log2 codebook_size), at least 1."""
    return max(1, int(codebook_size - 1).bit_length())


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Non-negative ints (N,) -> ceil(N * bits / 8) bytes, each value in `bits` bits, least significant first."""
    v = np.asarray(values, dtype=np.uint64)
    b = ((v[:, None] >> np.arange(bits, dtype=np.uint64)) & 1).astype(np.uint8)
    return np.packbits(b.reshape(-1), bitorder="little").tobytes()


def unpack_bits(data: bytes, count: int, bits: int) -> np.ndarray:
    """The inverse of pack_bits: (count,) int64."""
    b = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[:count * bits].reshape(count, bits)
    return (b.astype(np.int64) << np.arange(bits, dtype=np.int64)).sum(1)


def read_code_header(path) -> dict:
    """The JSON header of a .lmxc code file (checked like read_codes does; the codes are not read)."""
    return _read(path, header_only=True)[1]


def read_codes(path) -> tuple[torch.Tensor, dict]:
    """(codes int64 (B, K, F), header), for every file (version 1 and unbatched files too). ModelFileError for
    anything malformed."""
    return _read(path)


def _read(path, header_only: bool = False):
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such code file")
    data = path.read_bytes()
    if len(data) < _PRE.size or data[:4] != MAGIC:
        raise ModelFileError(f"{path}: not a latentmix code file (bad magic)")
    _, version, hlen = _PRE.unpack_from(data)
    if version < 1:
        raise ModelFileError(f"{path}: corrupt code file (version {version})")
    if version > VERSION:
        raise ModelFileError(f"{path}: code file version {version} is newer than this latentmix supports "
                             f"({VERSION}); upgrade latentmix")
    if len(data) < _PRE.size + hlen:
        raise ModelFileError(f"{path}: truncated code file (header)")
    try:
        header = json.loads(data[_PRE.size:_PRE.size + hlen].decode())
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ModelFileError(f"{path}: corrupt code file header (not JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: corrupt code file header (a {type(header).__name__}, not a mapping)")
    h = validate(CodeHeader, header, f"{path}: corrupt code file header", ModelFileError)
    shape, dtype, size = h.shape, h.dtype, h.codebook_size
    if h.count() > MAX_CODES:
        raise ModelFileError(f"{path}: corrupt code file header (shape {shape} holds more than {MAX_CODES} codes)")
    if dtype not in (("<u2", "<u4") if version == 1 else (f"bits{code_bits(size)}",)):
        raise ModelFileError(f"{path}: corrupt code file header (dtype {dtype!r} for version {version})")
    for key, value in (("num_codebooks", shape[1]), ("frames", shape[2])):
        if header.get(key, value) != value:
            raise ModelFileError(f"{path}: corrupt code file header ({key} {header[key]} but shape {shape})")
    if header_only:
        return None, header
    start, count = _PRE.size + hlen, h.count()
    bits = code_bits(size)
    nbytes = count * np.dtype(dtype).itemsize if version == 1 else -(-count * bits // 8)
    if len(data) != start + nbytes + 4:
        raise ModelFileError(f"{path}: truncated or padded code file ({len(data)} bytes, expected "
                             f"{start + nbytes + 4})")
    payload = data[start:start + nbytes]
    (crc,) = struct.unpack_from("<I", data, start + nbytes)
    if zlib.crc32(payload) != crc:
        raise ModelFileError(f"{path}: code file is corrupt (CRC mismatch)")
    flat = np.frombuffer(payload, dtype=dtype).astype(np.int64) if version == 1 else unpack_bits(payload, count, bits)
    if count and (int(flat.min()) < 0 or int(flat.max()) >= size):
        raise ModelFileError(f"{path}: codes outside [0, {size}) (corrupt file)")
    return torch.from_numpy(flat.reshape(shape)), header
