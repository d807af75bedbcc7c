"""The .lmxc code file: round trip, one (B, K, F) shape, header, and clear errors for every kind of damage."""
import struct

import pytest
import torch

from latentmix.codec.codefile import read_code_header, read_codes, write_codes
from latentmix.errors import ModelFileError

HEADER = {"model": "m.safetensors", "sample_rate": 22050, "hop_length": 320, "original_length": 1234,
          "codebook_size": 1024, "chunking": {"chunk_frames": 10}}


def test_round_trip_is_always_batch_codebooks_frames(tmp_path):
    codes = torch.randint(0, 1024, (1, 4, 37))
    write_codes(tmp_path / "a.lmxc", codes, HEADER)
    back, h = read_codes(tmp_path / "a.lmxc")
    assert torch.equal(back, codes) and back.dtype == torch.int64 and back.shape == (1, 4, 37)
    assert h["original_length"] == 1234 and h["num_codebooks"] == 4 and h["frames"] == 37
    assert h["dtype"] == "bits10" and read_code_header(tmp_path / "a.lmxc")["chunking"] == {"chunk_frames": 10}
    with pytest.raises(ValueError, match="batch, codebooks, frames"):
        write_codes(tmp_path / "2d.lmxc", codes[0], HEADER)
    b3 = torch.randint(0, 70000, (2, 3, 5))
    write_codes(tmp_path / "b.lmxc", b3, dict(HEADER, codebook_size=70000))
    back3, h3 = read_codes(tmp_path / "b.lmxc")
    assert torch.equal(back3, b3) and h3["dtype"] == "bits17"
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves nothing behind


def test_file_size_is_the_bitrate(tmp_path):
    codes = torch.randint(0, 1024, (1, 9, 4134))       # 60 s at 68.9 frames/s, 9 levels
    write_codes(tmp_path / "a.lmxc", codes, HEADER)
    size = (tmp_path / "a.lmxc").stat().st_size
    payload = 9 * 4134 * 10 / 8
    assert payload < size < payload + 600               # the header and CRC are all that is added


def test_version_1_and_unbatched_files_read_as_batch_of_one(tmp_path):
    import json
    import zlib
    codes = torch.randint(0, 1024, (3, 11))
    h = dict(HEADER, shape=[1, 3, 11], batched=False, dtype="<u2", num_codebooks=3, frames=11)
    hb = json.dumps(h).encode()
    payload = codes.numpy().astype("<u2").tobytes()
    (tmp_path / "v1.lmxc").write_bytes(struct.pack("<4sHI", b"LMXC", 1, len(hb)) + hb + payload
                                       + struct.pack("<I", zlib.crc32(payload)))
    back, _ = read_codes(tmp_path / "v1.lmxc")
    assert back.shape == (1, 3, 11) and torch.equal(back[0], codes)


def test_codes_beyond_the_codebook_with_a_valid_crc_are_refused(tmp_path):
    write_codes(tmp_path / "a.lmxc", torch.tensor([[[999, 3]]]), dict(HEADER, codebook_size=1000))
    with pytest.raises(ModelFileError, match="outside"):
        # 1000 codes take 10 bits: patch the first code to 1023 and fix the CRC
        import zlib
        data = bytearray((tmp_path / "a.lmxc").read_bytes())
        hlen = struct.unpack_from("<I", data, 6)[0]
        start = 10 + hlen
        data[start] = 0xFF
        data[start + 1] |= 0x03
        payload = bytes(data[start:-4])
        data[-4:] = struct.pack("<I", zlib.crc32(payload))
        (tmp_path / "a.lmxc").write_bytes(bytes(data))
        read_codes(tmp_path / "a.lmxc")


def test_codes_out_of_range_rejected(tmp_path):
    with pytest.raises(ValueError):
        write_codes(tmp_path / "x.lmxc", torch.tensor([[[5, 2000]]]), HEADER)


@pytest.mark.parametrize("damage", ["magic", "truncated", "version", "crc", "header", "empty"])
def test_corrupt_files_raise_model_file_error(tmp_path, damage):
    p = tmp_path / "c.lmxc"
    write_codes(p, torch.randint(0, 1024, (1, 2, 9)), HEADER)
    data = bytearray(p.read_bytes())
    if damage == "magic":
        data[:4] = b"RIFF"
    elif damage == "truncated":
        data = data[:-7]
    elif damage == "version":
        data[4:6] = struct.pack("<H", 99)
    elif damage == "crc":
        data[-6] ^= 0xFF
    elif damage == "header":
        data[11] = ord("}")
    else:
        data = b""
    p.write_bytes(bytes(data))
    with pytest.raises(ModelFileError) as e:
        read_codes(p)
    assert str(p) in str(e.value)
    if damage == "version":
        assert "newer" in str(e.value)
