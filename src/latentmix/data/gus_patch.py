"""GUS patch sets (the .pat files a timidity .cfg names, e.g. Debian's `freepats`), note recordings and Hydrogen
drum kits -> one SoundFont 2 file, so the renderer, fresh-song roots and `sf2-overlap` take them like any .sf2 (#19).

Envelopes follow timidity's reading of a patch (rates as 6.9 fixed point per 44.1 kHz sample, levels on a 96 dB
log scale) mapped onto SoundFont volume-envelope generators; ping-pong loops are unrolled; vibrato is dropped.
"""
from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..fileio import read_bytes
from .sf2_samples import DRUM_BANK, GEN_INSTRUMENT, GEN_SAMPLE

HEADER = 129          # file header; then one 63-byte instrument header and one 47-byte layer header
SAMPLE_HEADER = 96
_SAMPLE = struct.Struct("<7sBIIIHIIIhB6s6s3s3sBHH36s")
MODE_16BIT, MODE_UNSIGNED, MODE_LOOP, MODE_PINGPONG, MODE_REVERSE, MODE_SUSTAIN, MODE_ENVELOPE = (
    1, 2, 4, 8, 16, 32, 64)
HIHATS = (42, 44, 46)  # closed / pedal / open hi-hat cut each other off (SoundFont exclusive class 1)


@dataclass
class PatSample:
    """One wave of a patch: int16 PCM, its rate, key range, root key (fractional), loop and envelope."""
    pcm: np.ndarray
    rate: int
    low_key: float
    high_key: float
    root_key: float
    loop: tuple[int, int] | None
    sustain: bool
    envelope: bool
    rates: bytes
    offsets: bytes
    scale_factor: int
    release: float | None = None     # one-shot samples (read_note_samples): seconds of release after note-off
    velocity: tuple[int, int] | None = None   # a drum kit's velocity layer (read_drum_kit)


def _read_mono(path) -> tuple[np.ndarray, int]:
    """(float32 mono samples, rate) of an audio file; audio.read_audio's one-line InputError when unusable."""
    from ..audio import info, read_audio
    return read_audio(path, sr=None).numpy()[0], info(path)[1]


def _key(millihertz: int) -> float:
    return 69.0 + 12.0 * math.log2(max(millihertz, 1) / 440000.0)


def read_patch(path) -> list[PatSample]:
    """The waves of a GF1 .pat file (first instrument, first layer); InputError naming the file when unusable."""
    path = Path(path)
    b = read_bytes(path, "patch file")
    if len(b) < HEADER + 63 + 47 or b[:8] != b"GF1PATCH":
        raise InputError(f"{path}: not a GUS patch file (no GF1PATCH header)")
    n = b[HEADER + 63 + 6]
    off, waves = HEADER + 63 + 47, []
    for i in range(n):
        if off + SAMPLE_HEADER > len(b):
            raise InputError(f"{path}: truncated patch file (wave {i + 1} of {n} has no header)")
        (_, _, size, ls, le, rate, lo, hi, root, _, _, rates, offsets, _, _, modes, _, scale_factor,
         _) = _SAMPLE.unpack_from(b, off)
        off += SAMPLE_HEADER
        if off + size > len(b):
            raise InputError(f"{path}: truncated patch file (wave {i + 1} of {n} runs past the end)")
        raw = b[off:off + size]
        off += size
        if modes & MODE_16BIT:
            pcm = np.frombuffer(raw[:size // 2 * 2], "<u2" if modes & MODE_UNSIGNED else "<i2").astype(np.int32)
            pcm = pcm - 32768 if modes & MODE_UNSIGNED else pcm
            ls, le = ls // 2, le // 2
        else:
            pcm = np.frombuffer(raw, np.uint8 if modes & MODE_UNSIGNED else np.int8).astype(np.int32)
            pcm = (pcm - 128 if modes & MODE_UNSIGNED else pcm) * 256
        if modes & MODE_REVERSE:
            pcm, ls, le = pcm[::-1], len(pcm) - le, len(pcm) - ls
        loop = None
        if modes & MODE_LOOP and 0 <= ls < le <= len(pcm) and le - ls >= 2:
            if modes & MODE_PINGPONG:     # forward then backward: one forward loop twice as long
                pcm = np.concatenate([pcm[:le], pcm[le - 2:ls:-1]])
                le = len(pcm)
            loop = (int(ls), int(le))
        if not len(pcm):
            continue
        waves.append(PatSample(pcm.clip(-32768, 32767).astype(np.int16), int(rate or 44100), _key(lo), _key(hi),
                               _key(root), loop, bool(modes & MODE_SUSTAIN), bool(modes & MODE_ENVELOPE),
                               rates, offsets, int(scale_factor)))
    if not waves:
        raise InputError(f"{path}: patch file holds no waves")
    return waves


def read_cfg(path) -> tuple[dict[int, tuple[Path, float]], dict[int, tuple[Path, float]]]:
    """A timidity .cfg's bank 0 and drumset 0: ({program: (pat path, amp)}, {drum note: (pat path, amp)}).

    Reads `dir`, `bank N`, `drumset N` and `NUM file [amp=A]` lines; other banks and options are skipped."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="latin1").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no such timidity config") from None
    base, section, tones, drums = path.parent, None, {}, {}
    for line in lines:
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "dir" and len(words) > 1:
            base = Path(words[1])
        elif words[0] in ("bank", "drumset") and len(words) > 1:
            section = (words[0], words[1])
        elif words[0].isdigit() and len(words) > 1 and section in (("bank", "0"), ("drumset", "0")):
            try:
                amp = next((float(w[4:]) for w in words[2:] if w.startswith("amp=")), 100.0)
            except ValueError:
                raise InputError(f"{path}: bad amp= in '{line.strip()}'") from None
            name = words[1] if words[1].endswith(".pat") else words[1] + ".pat"
            file = Path(name) if Path(name).is_absolute() else base / name
            (tones if section[0] == "bank" else drums)[int(words[0])] = (file, amp / 100.0)
    if not tones and not drums:
        raise InputError(f"{path}: no patches in bank 0 or drumset 0 (not a timidity config?)")
    return tones, drums


def _stage_seconds(rate: int, delta: int) -> float:
    """Seconds a GUS envelope stage takes to move `delta` of 255 levels at `rate` (timidity's rule)."""
    v, r = rate & 0x3F, 3 - ((rate >> 6) & 3)
    if v == 0:
        return 100.0
    return abs(delta) / 255.0 * (2 ** 21 / (v << (3 * r))) / 44100.0


def _db(level: int) -> float:
    return (255 - level) * 96.0 / 255.0       # attenuation in dB of a GUS envelope level (255 = full)


def _tc(seconds: float) -> int:
    return int(np.clip(round(1200 * math.log2(max(seconds, 0.001))), -12000, 8000))


def _envelope(w: PatSample, drum: bool) -> dict[int, int]:
    """SoundFont volume-envelope generators for a wave."""
    length = len(w.pcm) / w.rate
    if w.release is not None:
        return {34: _tc(0.001), 38: _tc(w.release)}
    if not w.envelope or drum:
        release = length if w.loop is None else 0.3
        return {34: _tc(0.001), 38: _tc(release)}
    o, r = list(w.offsets), list(w.rates)
    t = [_stage_seconds(r[0], o[0])] + [_stage_seconds(r[i], o[i] - o[i - 1]) for i in range(1, 6)]
    peak = o[0]
    if w.sustain:
        drop = max(0.0, _db(o[2]) - _db(peak))
        decay = (t[1] + t[2]) * 100.0 / max(drop, 1.0)
        tail = max(1.0, _db(o[5]) - _db(o[2]))
        release = (t[3] + t[4] + t[5]) * 100.0 / tail
        sustain = int(round(10 * drop))
    else:                                        # no sustain: the whole envelope runs without waiting for note-off
        drop = max(1.0, _db(o[5]) - _db(peak))
        decay = release = sum(t[1:]) * 100.0 / drop
        sustain = 1000
    if w.loop is None:                           # a one-shot ends with its sample: let it ring out
        release = max(release, min(length, 5.0))
    return {34: _tc(t[0]), 36: _tc(decay), 37: min(1440, sustain), 38: _tc(release),
            48: int(round(10 * _db(peak)))}


def _zones(waves: list[PatSample], amp: float, drum_note: int | None) -> list[tuple[dict, PatSample, int]]:
    """(generators, wave, gain in cB) per SoundFont zone: disjoint key ranges covering 0-127 (a drum: its one key)."""
    gain_cb = int(round(-200 * math.log10(max(amp, 1e-3))))
    if drum_note is not None:
        layers = [w for w in waves if w.velocity] or \
            [next((w for w in waves if w.low_key <= drum_note <= w.high_key + 1), waves[0])]
        # a fixed-pitch wave (scale factor 0: every Hydrogen layer) plays as recorded; a pitched one (most GUS
        # drums) is transposed by key against its root, as timidity plays it
        return [({43: (drum_note, drum_note), **({44: w.velocity} if w.velocity else {}),
                  **({56: 0, 58: drum_note} if w.scale_factor == 0 else {}),
                  **_envelope(w, True), **({57: 1} if drum_note in HIHATS else {})}, w, gain_cb) for w in layers]
    order = sorted(waves, key=lambda w: w.low_key)
    out, lo = [], 0
    for i, w in enumerate(order):
        hi = 127 if i == len(order) - 1 else int(np.clip(math.floor(w.high_key + 1e-6), lo, 127))
        if hi < lo:
            continue
        gens = {43: (lo, hi), **_envelope(w, False)}
        if w.scale_factor == 0:
            gens[56] = 0
        out.append((gens, w, gain_cb))
        lo = hi + 1
        if lo > 127:
            break
    return out


def write_sf2(tones: dict, drums: dict, out, name: str = "patch set") -> dict:
    """Write the SoundFont: bank 0 presets from `tones` {program: (waves, amp)}, bank 128 preset 0 from `drums`
    {note: (waves, amp)}. Returns counts. The file appears whole or not at all."""
    from ..fileio import atomic_path
    samples, shdr, smpl_parts, pos = {}, [], [], 0

    def sample_index(w: PatSample) -> int:
        nonlocal pos
        if id(w) not in samples:
            root = int(round(w.root_key))    # the fractional part is each zone's fineTune: not in the header too
            start, end = pos, pos + len(w.pcm)
            ls, le = (start + w.loop[0], start + w.loop[1]) if w.loop else (start, end)
            shdr.append(struct.pack("<20sIIIIIBbHH", f"s{len(shdr)}".encode(), start, end, ls, le, w.rate,
                                    int(np.clip(root, 0, 127)), 0, 0, 1))
            smpl_parts.extend([w.pcm.astype("<i2").tobytes(), bytes(2 * 46)])
            pos = end + 46
            samples[id(w)] = len(shdr) - 1
        return samples[id(w)]

    inst, ibag, igen, instruments = [], [], [], []

    def instrument(label: str, zones) -> int:
        inst.append(struct.pack("<20sH", label.encode()[:19], len(ibag)))
        for gens, w, gain_cb in zones:
            ibag.append(struct.pack("<HH", len(igen), 0))
            gens = dict(gens)
            gens[48] = int(np.clip(gens.get(48, 0) + gain_cb, 0, 1440))
            gens[54] = 1 if w.loop else 0
            if 58 not in gens:
                gens[58] = int(np.clip(round(w.root_key), 0, 127))
                gens[52] = int(np.clip(round((gens[58] - w.root_key) * 100), -99, 99))
            ordered = [(43, gens.pop(43))] + ([(44, gens.pop(44))] if 44 in gens else []) + sorted(gens.items())
            for op, val in ordered:
                igen.append(struct.pack("<HBB", op, *val) if op in (43, 44) else struct.pack("<Hh", op, val))
            igen.append(struct.pack("<HH", GEN_SAMPLE, sample_index(w)))
        return len(inst) - 1

    for prog in sorted(tones):
        waves, amp = tones[prog]
        instruments.append((f"prog{prog}", prog, 0, instrument(f"prog{prog}", _zones(waves, amp, None))))
    if drums:
        zones = [z for note in sorted(drums) for z in _zones(drums[note][0], drums[note][1], note)]
        instruments.append(("drums", 0, DRUM_BANK, instrument("drums", zones)))
    phdr, pbag, pgen = [], [], []
    for label, prog, bank, idx in instruments:
        phdr.append(struct.pack("<20sHHHIII", label.encode(), prog, bank, len(pbag), 0, 0, 0))
        pbag.append(struct.pack("<HH", len(pgen), 0))
        pgen.append(struct.pack("<HH", GEN_INSTRUMENT, idx))
    phdr.append(struct.pack("<20sHHHIII", b"EOP", 0, 0, len(pbag), 0, 0, 0))
    pbag.append(struct.pack("<HH", len(pgen), 0))
    pgen.append(struct.pack("<HH", 0, 0))
    inst.append(struct.pack("<20sH", b"EOI", len(ibag)))
    ibag.append(struct.pack("<HH", len(igen), 0))
    igen.append(struct.pack("<HH", 0, 0))
    shdr.append(struct.pack("<20sIIIIIBbHH", b"EOS", 0, 0, 0, 0, 0, 0, 0, 0, 0))
    mod = struct.pack("<HHhHH", 0, 0, 0, 0, 0)

    def chunk(cid: bytes, data: bytes) -> bytes:
        return cid + struct.pack("<I", len(data)) + data + (b"\0" if len(data) & 1 else b"")

    def lst(kind: bytes, *chunks: bytes) -> bytes:
        return chunk(b"LIST", kind + b"".join(chunks))

    label = (name.encode("ascii", "replace")[:255] + b"\0")
    info = lst(b"INFO", chunk(b"ifil", struct.pack("<HH", 2, 1)), chunk(b"isng", b"EMU8000\0"),
               chunk(b"INAM", label + (b"\0" if len(label) & 1 else b"")))
    sdta = lst(b"sdta", chunk(b"smpl", b"".join(smpl_parts)))
    pdta = lst(b"pdta", chunk(b"phdr", b"".join(phdr)), chunk(b"pbag", b"".join(pbag)), chunk(b"pmod", mod),
               chunk(b"pgen", b"".join(pgen)), chunk(b"inst", b"".join(inst)), chunk(b"ibag", b"".join(ibag)),
               chunk(b"imod", mod), chunk(b"igen", b"".join(igen)), chunk(b"shdr", b"".join(shdr)))
    body = b"sfbk" + info + sdta + pdta
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return {"presets": len(tones), "drum_notes": len(drums), "samples": len(shdr) - 1, "bytes": 8 + len(body)}


NOTE = re.compile(r"^([A-Ga-g])([#bs]?)(-?\d)(?![\d])")        # "s" for sharp as in As2.mp3 (tonejs-instruments)
AUDIO = (".wav", ".flac", ".ogg", ".aif", ".aiff", ".mp3")


def read_note_samples(folder, seconds: float = 8.0, release: float = 0.4) -> list[PatSample]:
    """One-shot recordings named by their note (`C4.wav`, `D#1v10.ogg`, `Bb2.flac`, `As2.mp3`; C4 = key 60) ->
    waves that each cover the keys up to half-way to their neighbours (a recording on every semitone plays its own
    key): a sampled instrument such as a piano. Each is cut to `seconds` (with a 0.5 s fade) and mixed to mono, the
    set scaled so its loudest peak is 0.9 (their relative levels kept; read_program_sample levels by RMS instead);
    a note-off releases a note in `release` seconds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder of note samples")
    found = {}
    for f in sorted(folder.iterdir()):
        m = NOTE.match(f.name)
        if f.suffix.lower() not in AUDIO or not m:
            continue
        semis = "C D EF G A B".index(m.group(1).upper()) + {"#": 1, "s": 1, "b": -1, "": 0}[m.group(2)]
        key = 12 * (int(m.group(3)) + 1) + semis
        x, sr = _read_mono(f)
        if key in found:
            raise InputError(f"{f}: a second recording of key {key} in {folder}")
        x = x[:int(seconds * sr)]
        fade = min(len(x), int(0.5 * sr))
        x[len(x) - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        found[key] = (x, int(sr))
    if not found:
        raise InputError(f"{folder}: no audio files named by a note (e.g. C4.wav, D#1v10.ogg)")
    scale = 0.9 / max(1e-6, max(float(np.abs(x).max()) for x, _ in found.values()))   # the set's loudest peak at 0.9
    keys = sorted(found)
    edges = [keys[0] - 3] + keys + [keys[-1] + 3]                # half-way to each neighbour (a minor third at the ends)
    return [PatSample((np.clip(found[k][0] * scale, -1, 1) * 32767).astype(np.int16), found[k][1],
                      (edges[i] + k) / 2, (k + edges[i + 2]) / 2, float(k), None, False, False, b"", b"", 1024,
                      release) for i, k in enumerate(keys)]


def estimate_key(x: np.ndarray, sr: int) -> float:
    """The pitch of a one-shot recording as a fractional MIDI key (69 = A4 = 440 Hz): the median over its
    loud frames in its first 3 s of a YIN-style period estimate (cumulative-mean-normalised difference, first
    dip below 0.15, 40 Hz - 2 kHz); InputError when fewer than three frames are voiced."""
    w = 1 << int(math.ceil(math.log2(sr / 40)))                # the comparison window: one period of 40 Hz
    lo, hi = max(2, int(sr / 2000)), w
    x = np.asarray(x[:int(3 * sr)], np.float64)
    frames = [x[i:i + 2 * w] for i in range(0, len(x) - 2 * w + 1, w // 2)]
    peak = max((float(np.abs(f).max()) for f in frames), default=0.0)
    keys = []
    for f in frames:
        if np.abs(f).max() < 0.1 * peak:
            continue
        d = np.array([np.sum((f[:w] - f[tau:tau + w]) ** 2) for tau in range(hi)])
        cmnd = d[1:] * np.arange(1, hi) / np.maximum(np.cumsum(d[1:]), 1e-12)
        below = np.nonzero(cmnd[lo - 1:] < 0.15)[0]
        if not len(below):
            continue
        t = below[0] + lo - 1                                   # index into cmnd: period t + 1
        while t + 1 < len(cmnd) and cmnd[t + 1] < cmnd[t]:      # down to the dip's floor
            t += 1
        a, b, c = cmnd[max(t - 1, 0)], cmnd[t], cmnd[min(t + 1, len(cmnd) - 1)]
        shift = min(1.0, max(-1.0, 0.5 * (a - c) / (a - 2 * b + c))) if (a - 2 * b + c) > 0 else 0.0
        keys.append(69.0 + 12.0 * math.log2(sr / (t + 1 + shift) / 440.0))
    if len(keys) < 3:
        raise InputError("no steady pitch found (give the key: PROGRAMS=FILE@KEY)")
    return float(np.median(keys))


def read_program_sample(path, key: float | None = None, seconds: float = 8.0,
                        release: float = 0.4) -> list[PatSample]:
    """One one-shot recording played over every key, transposed from its pitch (`key`, or estimate_key's):
    an instrument such as lmms's steel_guitar01.ogg. Cut to `seconds` with a 0.5 s fade; its first second's RMS
    set to -18 dBFS (peak at most 0.99), so a distorted recording is not 12 dB louder than a clean one."""
    x, sr = _read_mono(path)
    x = x[:int(seconds * sr)].copy()
    if not len(x) or float(np.abs(x).max()) <= 0:
        raise InputError(f"{path}: silent or empty recording")
    if key is None:
        try:
            key = estimate_key(x, int(sr))
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
    fade = min(len(x), int(0.5 * sr))
    x[len(x) - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    rms = float(np.sqrt(np.mean(np.square(x[:int(sr)], dtype=np.float64))))
    x = x * min(10 ** (-18 / 20) / max(rms, 1e-9), 0.99 / float(np.abs(x).max()))
    return [PatSample((np.clip(x, -1, 1) * 32767).astype(np.int16), int(sr), 0.0, 127.0, float(key),
                      None, False, False, b"", b"", 1024, release)]


# General MIDI drum keys for a Hydrogen instrument name: (pattern, keys); the first instrument to match takes them
GM_DRUMS = [
    (r"kick|bass ?drum|\bbd\b", (36, 35)),
    (r"(hh|hat).*(pedal|pd\b|foot)|(pedal|foot).*(hh|hat)", (44,)),
    (r"(hh|hat).*(open|op\b)|open.*(hh|hat)", (46,)),
    (r"\bhh|hat\b|hi-?hat", (42, 44, 46)),
    (r"stick|rim|side", (37,)), (r"clap", (39,)), (r"^(?!.*roll).*snare", (38, 40)),
    (r"\btom.*(floor|low|lo\b)|(floor|low).*\btom", (41, 43)), (r"\btom.*mid|mid.*\btom", (45, 47)),
    (r"\btom.*(hi|high)|(hi|high).*\btom", (48, 50)), (r"\btom", (45, 47, 43, 48, 50, 41)),
    (r"ride.*(bell|cup)", (53,)), (r"crash", (49, 57)), (r"ride", (51, 59)), (r"chin", (52,)),
    (r"splash", (55,)), (r"cowbell", (56,)), (r"tamb", (54,)), (r"^(?!.*(cow|tree)).*bell", (53,)),
]


def _kit_layers(folder: Path, el, text) -> list[PatSample]:
    """The velocity layers of one Hydrogen instrument element, as one-shot waves with disjoint velocity ranges."""

    def num(node, name, default):
        try:
            return float(text(node, name, default) or default)
        except ValueError:
            raise InputError(f"{folder / 'drumkit.xml'}: <{name}> of '{text(el, 'name')}' is not a number") from None
    layers = [c for c in el if c.tag.rsplit("}", 1)[-1] == "layer"] or [el]     # the old format: one sample
    gain = num(el, "gain", "1") * num(el, "volume", "1")
    waves = []
    for layer in layers:
        x, sr = _read_mono(folder / text(layer, "filename"))
        lo, hi = num(layer, "min", "0"), num(layer, "max", "1")
        x = x * gain * num(layer, "gain", "1")
        if len(x):
            waves.append(PatSample((np.clip(x, -1, 1) * 32767).astype(np.int16), int(sr), 0, 127, 60.0, None,
                                   False, False, b"", b"", 0, None, (int(round(lo * 127)), int(round(hi * 127)))))
    waves.sort(key=lambda w: w.velocity)
    for i, w in enumerate(waves):                      # disjoint velocity ranges that cover 0-127
        lo = 0 if i == 0 else waves[i - 1].velocity[1] + 1
        hi = 127 if i == len(waves) - 1 else max(lo, min(127, w.velocity[1]))
        w.velocity = (lo, hi)
    return [w for w in waves if w.velocity[0] <= w.velocity[1] <= 127]


def read_drum_kit(folder) -> dict[int, list[PatSample]]:
    """A Hydrogen drum kit (FOLDER/drumkit.xml and its samples) -> {GM drum key: velocity layers}, its
    instruments mapped to General MIDI keys by name (kick 36, snare 38, closed hi-hat 42, ...); every layer a
    one-shot that rings out, mixed to mono, scaled by the layer's and instrument's gains."""
    import xml.etree.ElementTree as ET
    folder = Path(folder)
    xml = folder / "drumkit.xml"
    try:
        root = ET.parse(xml).getroot()
    except FileNotFoundError:
        raise InputError(f"{xml}: no such file (not a Hydrogen drum kit folder)") from None
    except ET.ParseError as e:
        raise InputError(f"{xml}: not a readable drumkit.xml ({e})") from None

    def tag(el, name):       # drumkit.xml files come with and without a namespace
        return next((c for c in el if c.tag.rsplit("}", 1)[-1] == name), None)

    def text(el, name, default=""):
        c = tag(el, name)
        return c.text.strip() if c is not None and c.text else default

    instruments = [el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "instrument"]
    wanted = []                                   # (keys, element) of the instruments whose names map to GM keys
    for el in instruments:
        name = text(el, "name").lower()
        keys = next((k for pattern, k in GM_DRUMS if re.search(pattern, name)), ())
        if keys and (text(el, "filename") or any(c.tag.rsplit("}", 1)[-1] == "layer" for c in el)):
            wanted.append((keys, el))
    owner: dict[int, object] = {}
    for keys, el in wanted:                       # each instrument its first free key, then the spare ones
        key = next((k for k in keys if k not in owner), None)
        if key is not None:
            owner[key] = el
    for rank in range(1, 6):
        for keys, el in wanted:
            if rank < len(keys) and keys[rank] not in owner and any(v is el for v in owner.values()):
                owner[keys[rank]] = el
    kit: dict[int, list[PatSample]] = {}
    loaded: dict[int, list[PatSample]] = {}
    for key, el in sorted(owner.items()):
        if id(el) not in loaded:
            loaded[id(el)] = _kit_layers(folder, el, text)
        if loaded[id(el)]:
            kit[key] = loaded[id(el)]
    if not kit:
        raise InputError(f"{xml}: no instrument with a name that maps to a General MIDI drum (kick, snare, hat...)")
    return kit


def _program_waves(path, key) -> list[PatSample]:
    """A --program-sample source: a folder of note samples (read_note_samples) or one recording."""
    if Path(path).is_dir():
        if key is not None:
            raise ConfigError(f"{path}: a folder of note samples takes no @KEY (its files are named by their notes)")
        return read_note_samples(path)
    return read_program_sample(path, key)


def convert(cfg, out, note_samples=None, programs=(0, 1), drum_kit=None, program_samples=()) -> dict:
    """A timidity config's bank 0 and drumset 0 -> one .sf2 at `out` (see write_sf2); InputError naming the
    first missing or unreadable patch. `note_samples`: a folder for read_note_samples, played by `programs`
    in place of the patches; `drum_kit`: a Hydrogen kit folder (read_drum_kit) whose keys replace the drum set's;
    `program_samples`: (programs, file or folder, key or None) triples, each file played by read_program_sample
    and each folder by read_note_samples;
    ConfigError when a program is given two sounds (by two of them, or by one and `note_samples`)."""
    tones, drums = read_cfg(cfg)
    owners = {p: "--note-samples" for p in programs} if note_samples is not None else {}
    for progs, f, _ in program_samples:                # every clash before any long read
        for p in progs:
            if p in owners:
                raise ConfigError(f"program {p} is given twice ({owners[p]} and {f}): give each program one sound")
            owners[p] = str(f)
    waves = read_note_samples(note_samples) if note_samples is not None else None    # fail before the long part
    singles, read = {}, {}                        # one recording read once and stored once, whatever it plays
    for progs, f, key in program_samples:
        ident = (Path(f).resolve(), key)
        if ident not in read:
            read[ident] = _program_waves(f, key)
        singles.update({p: read[ident] for p in progs})
    kit = read_drum_kit(drum_kit) if drum_kit is not None else None
    cache: dict = {}

    def patch(file):                              # a patch named twice is read and stored once
        if file not in cache:
            cache[file] = read_patch(file)
        return cache[file]
    replaced_tones = set(programs) if waves is not None else set()
    tone_waves = {k: (patch(f), amp) for k, (f, amp) in tones.items() if k not in replaced_tones | set(singles)}
    tone_waves.update({p: (waves, 1.0) for p in replaced_tones})
    tone_waves.update({p: (w, 1.0) for p, w in singles.items()})
    drum_waves = {k: (patch(f), amp) for k, (f, amp) in drums.items() if not kit or k not in kit}
    drum_waves.update({k: (v, 1.0) for k, v in (kit or {}).items()})   # the kit's keys; the others stay the set's
    sources = (note_samples, drum_kit, *(f for _, f, _ in program_samples))
    extra = "".join(f" + {n}" for n in dict.fromkeys(Path(p).name for p in sources if p))
    name = f"{Path(cfg).stem}{extra} (converted by latentmix)"
    return write_sf2(tone_waves, drum_waves, out, name=name)
