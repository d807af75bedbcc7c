"""Which recorded samples a General MIDI SoundFont (.sf2) plays for each stem class, and which of them another
SoundFont holds bit for bit: a check that a "held-out timbre" test font shares no samples with the training fonts.

Pure Python over the RIFF structure (phdr/pbag/pgen -> inst/ibag/igen -> shdr/smpl); no synthesis.
"""
from __future__ import annotations

import functools
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..fileio import read_bytes
from .soundfont import CLASSES, stem_of_program

GEN_INSTRUMENT, GEN_SAMPLE = 41, 53
DRUM_BANK = 128


@dataclass(frozen=True)
class Sample:
    """One sample header's data: its name, frame count and the md5 of its 16-bit PCM."""
    name: str
    frames: int
    digest: str


def _chunks(b: bytes, off: int, end: int, path: Path):
    while off + 8 <= end:
        cid, size = b[off:off + 4], struct.unpack("<I", b[off + 4:off + 8])[0]
        if off + 8 + size > end:
            raise InputError(f"{path}: truncated SoundFont (chunk {cid!r} runs past the end of the file)")
        yield cid, off + 8, size
        off += 8 + size + (size & 1)


def _records(raw: bytes, size: int, fmt: str, what: str, path: Path) -> list[tuple]:
    if len(raw) % size:
        raise InputError(f"{path}: malformed SoundFont ({what} chunk of {len(raw)} bytes)")
    return [struct.unpack(fmt, raw[i:i + size]) for i in range(0, len(raw), size)]


def _read(path: Path) -> dict[str, bytes]:
    """The sdta/pdta sub-chunks of an sf2 file by name; InputError naming the file when it is not one."""
    b = read_bytes(path, "SoundFont file")
    if len(b) < 12 or b[:4] != b"RIFF" or b[8:12] != b"sfbk":
        raise InputError(f"{path}: not a SoundFont 2 file (no RIFF sfbk header)")
    out = {}
    for cid, o, s in _chunks(b, 12, len(b), path):
        if cid == b"LIST":
            for c2, o2, s2 in _chunks(b, o + 4, o + s, path):
                out[c2.decode("latin1")] = b[o2:o2 + s2]
    for need in ("smpl", "phdr", "pbag", "pgen", "inst", "ibag", "igen", "shdr"):
        if need not in out:
            raise InputError(f"{path}: malformed SoundFont (no {need} chunk)")
    ifil = out.get("ifil", b"\x02\x00")
    if len(ifil) < 2:
        raise InputError(f"{path}: malformed SoundFont (ifil chunk of {len(ifil)} bytes)")
    if struct.unpack("<H", ifil[:2])[0] >= 3:
        raise InputError(f"{path}: an SF3 (compressed) SoundFont; only .sf2 sample data can be compared")
    return out


def _zones(headers, bags, gens, gen_oper: int) -> list[list[int]]:
    """For each header (but the terminal one), the `gen_oper` amounts of its zones."""
    out = []
    for h in range(len(headers) - 1):
        vals = []
        for z in range(headers[h][-1], headers[h + 1][-1]):
            if z + 1 >= len(bags):
                break
            for g in range(bags[z][0], bags[z + 1][0]):
                if g < len(gens) and gens[g][0] == gen_oper:
                    vals.append(gens[g][1])
        out.append(vals)
    return out


def preset_samples(path) -> dict[tuple[int, int], set[Sample]]:
    """{(bank, program): the samples its zones play}, read from a .sf2 file (empty and ROM samples left out);
    the last few files read are cached (by path, size and modification time): treat the result as read-only."""
    path = Path(path).expanduser()
    try:
        st = path.stat()
    except OSError:
        return _parse(path)                                       # the one-line error
    return _cached(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _cached(path: str, size: int, mtime: int) -> dict[tuple[int, int], set[Sample]]:
    return _parse(Path(path))


def _parse(path: Path) -> dict[tuple[int, int], set[Sample]]:
    c = _read(path)
    pcm = c["smpl"]
    shdr = _records(c["shdr"], 46, "<20sIIIIIBbHH", "shdr", path)
    samples = []
    for name, start, end, *_, kind in shdr[:-1]:
        if kind & 0x10:
            raise InputError(f"{path}: compressed (SF3) samples; only .sf2 sample data can be compared")
        lo, hi = 2 * min(start, end), 2 * max(start, end)
        data = b"" if kind & 0x8000 else pcm[lo:hi]              # ROM samples: no data in the file
        samples.append(Sample(name.split(b"\0")[0].decode("latin1"), len(data) // 2,
                              hashlib.md5(data).hexdigest()) if data else None)
    phdr = [(r[1], r[2], r[3]) for r in _records(c["phdr"], 38, "<20sHHHIII", "phdr", path)]
    inst = [(r[1],) for r in _records(c["inst"], 22, "<20sH", "inst", path)]
    pbag = _records(c["pbag"], 4, "<HH", "pbag", path)
    ibag = _records(c["ibag"], 4, "<HH", "ibag", path)
    pgen = _records(c["pgen"], 4, "<HH", "pgen", path)
    igen = _records(c["igen"], 4, "<HH", "igen", path)
    inst_samples = [{samples[s] for s in ids if s < len(samples) and samples[s] is not None}
                    for ids in _zones(inst, ibag, igen, GEN_SAMPLE)]
    out: dict[tuple[int, int], set[Sample]] = {}
    for (program, bank, _), ids in zip(phdr, _zones(phdr, pbag, pgen, GEN_INSTRUMENT)):
        got = out.setdefault((bank, program), set())
        for i in ids:
            if i < len(inst_samples):
                got |= inst_samples[i]
    return out


def class_samples(presets: dict[tuple[int, int], set[Sample]]) -> dict[str, set[Sample]]:
    """The samples a General MIDI song's stems play, by Slakh class: bank 0 programs (0-127) and the bank-128
    standard kit (program 0) for drums. A program the font lacks, which the renderer replaces by its family's
    first or by program 0, adds nothing here."""
    out = {c: set() for c in CLASSES}
    for (bank, program), s in presets.items():
        if bank == DRUM_BANK and program == 0:
            out["drums"] |= s
        elif bank == 0:
            out[stem_of_program(program)] |= s
    return out


def overlap(test, train) -> dict[str, dict]:
    """Per stem class of the `test` font: how many of its samples (and what share of their frames) some preset of
    the `train` fonts (a path or a list of paths) plays bit for bit. {class: {samples, shared, frames_share}}."""
    trains = [train] if isinstance(train, (str, Path)) else list(train)
    held = set()
    for t in trains:
        for s in preset_samples(t).values():
            held |= {x.digest for x in s}
    out = {}
    for cls, s in class_samples(preset_samples(test)).items():
        frames = sum(x.frames for x in s)
        shared = [x for x in s if x.digest in held]
        out[cls] = {"samples": len(s), "shared": len(shared),
                    "frames_share": sum(x.frames for x in shared) / frames if frames else 0.0}
    return out
