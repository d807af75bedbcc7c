"""SoundFont renderer: a MIDI file (mido) or a Song -> clean per-stem audio through a General MIDI .sf2.

Uses tinysoundfont (a maintained binding of TinySoundFont) for synthesis; mapping programs to stems the Slakh way:
piano 0-7, guitar 24-31, bass 32-39, channel 10 drums, everything else 'other'. Stems are (time,) float32.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import InputError

CLASSES = ("bass", "drums", "guitar", "piano", "other")


def stem_of_program(program: int, is_drum: bool = False) -> str:
    """Slakh class of a General MIDI program (0-based): piano 0-7, guitar 24-31, bass 32-39, else 'other'."""
    if is_drum:
        return "drums"
    if 0 <= program <= 7:
        return "piano"
    if 24 <= program <= 31:
        return "guitar"
    if 32 <= program <= 39:
        return "bass"
    return "other"


def load_midi(path):
    """Read a MIDI file with mido; InputError naming the file if it is missing or not MIDI."""
    import mido
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such MIDI file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty MIDI file")
    try:
        return mido.MidiFile(str(path))
    except Exception as e:
        raise InputError(f"{path}: not a readable MIDI file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def midi_events(midi) -> tuple[list[tuple], float, dict]:
    """Flatten a mido.MidiFile into timed events tagged with their stem class.

    Returns (events, length_s, programs) where events are (time_s, order, stem, kind, channel, a, b) with kind in
    {'on', 'off', 'cc', 'bend'} and programs maps stem -> sorted list of programs seen for it.
    """
    t = 0.0
    program = {ch: 0 for ch in range(16)}
    sounding: dict = {}          # (ch, note) -> stem of the note-on, so its note-off goes to the same stem
    events, programs = [], {}
    for order, msg in enumerate(midi):   # iterating a MidiFile yields messages with delta time in seconds
        t += msg.time
        if msg.is_meta or not hasattr(msg, "channel"):
            continue
        ch = msg.channel
        if msg.type == "program_change":
            program[ch] = msg.program
        elif msg.type == "note_on" and msg.velocity > 0:
            stem = stem_of_program(program[ch], ch == 9)
            sounding[(ch, msg.note)] = stem
            programs.setdefault(stem, set()).add(program[ch])
            events.append((t, order, stem, "on", ch, msg.note, msg.velocity, program[ch]))
        elif msg.type in ("note_off", "note_on"):
            stem = sounding.pop((ch, msg.note), None)
            if stem is not None:
                events.append((t, order, stem, "off", ch, msg.note, 0, program[ch]))
        elif msg.type == "control_change":
            for stem in CLASSES:  # controllers (volume, sustain...) apply to whatever that channel plays
                events.append((t, order, stem, "cc", ch, msg.control, msg.value, program[ch]))
        elif msg.type == "pitchwheel":
            for stem in CLASSES:
                events.append((t, order, stem, "bend", ch, msg.pitch + 8192, 0, program[ch]))
    programs = {k: sorted(v) for k, v in programs.items()}
    return events, t, programs


def _synth(soundfont, sr: int):
    """(Synth, sfid) for a SoundFont, loaded once per process and file version (InputError if unusable)."""
    try:
        import tinysoundfont
    except ImportError:
        raise InputError("the SoundFont renderer needs tinysoundfont: pip install tinysoundfont --no-deps") from None
    path = Path(soundfont)
    if not path.exists():
        raise InputError(f"{path}: no such SoundFont file")
    if path.is_dir() or path.stat().st_size == 0:
        raise InputError(f"{path}: not a SoundFont file")
    st = path.stat()
    return _load_synth(str(path.resolve()), st.st_mtime_ns, st.st_size, sr)


@functools.lru_cache(maxsize=6)     # training mixes several fonts (one per fresh-song root); each loads in ~0.1 s
def _load_synth(path: str, mtime: int, size: int, sr: int):
    import tinysoundfont
    synth = tinysoundfont.Synth(samplerate=sr, gain=-6.0)
    try:
        sfid = synth.sfload(path)
    except Exception as e:
        raise InputError(f"{path}: not a readable SoundFont (.sf2) file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return synth, sfid


def _select(synth, sfid, ch: int, program: int) -> None:
    try:
        if ch == 9:
            synth.program_select(ch, sfid, 128, 0, True)
        else:
            synth.program_select(ch, sfid, 0, program)
    except Exception:   # preset missing from this SoundFont: fall back to the first of its family
        try:
            synth.program_select(ch, sfid, 0, program - program % 8)
        except Exception:
            synth.program_select(ch, sfid, 0, 0)


# controllers a song may send that would move a shifted channel's bend range or wheel: RPN / NRPN selection, data
# entry and increment, and reset-all-controllers (which re-centres the wheel)
_RANGE_CCS = frozenset((6, 38, 96, 97, 98, 99, 100, 101, 121))


def _set_zone_shift(synth, ch: int, shift: int) -> None:
    """Channel `ch`'s pitch-bend range (RPN 0): 2 semitones (the MIDI default) when shift is 0, else 12, and its
    wheel centred `shift` semitones down, so a note played `shift` keys up sounds at the written pitch. The RPN
    is deselected after (101/100 = 127), so a song's own data-entry messages cannot change the range."""
    for cc, val in ((101, 0), (100, 0), (6, 12 if shift else 2), (38, 0), (101, 127), (100, 127)):
        synth.control_change(ch, cc, val)
    synth.pitchbend(ch, _bend(8192, shift))


def _bend(value: int, shift: int) -> int:
    """A song's wheel value (range 2 semitones) on a channel whose range is 12 and whose notes sound `shift` up."""
    if not shift:
        return int(value)
    return int(np.clip(round(8192 + (value - 8192) / 6 - shift * 8192 / 12), 0, 16383))


def _key(key: int, shift: int, ch: int) -> int:
    return key if ch == 9 else min(127, max(0, key + shift))


def render_midi(midi, soundfont, sr: int = 22050, tail: float = 1.0, stems=None,
                zone_shift=None) -> dict[str, np.ndarray]:
    """Render a mido.MidiFile, a MIDI path or a Song through `soundfont` into {stem: float32 (time,)} at `sr`.

    Each stem class is rendered on its own (a fresh synthesiser state), so stems are clean; only classes that
    have notes are returned. All stems share one length: the MIDI length plus `tail` seconds.
    zone_shift {stem: k} (a training augmentation): the stem's notes (drums never) are played k keys away and
    bent back to their pitch, so each sounds from a neighbouring sample zone, its formants moved k semitones. The
    bend assumes 100 cents per key (the SoundFont default scale tuning); on a shifted channel the song's own RPN and
    data-entry messages are dropped and a reset-all-controllers is followed by the shift again, so neither can
    undo it (the song's wheel is rescaled to its 2-semitone default range).
    """
    if hasattr(midi, "to_mido"):
        midi = midi.to_mido()
    elif isinstance(midi, (str, Path)):
        midi = load_midi(midi)
    events, length, _ = midi_events(midi)
    n_total = int(round((length + tail) * sr))
    synth, sfid = _synth(soundfont, sr)
    present = sorted({e[2] for e in events if e[3] == "on"}, key=CLASSES.index)
    out = {}
    for stem in present if stems is None else [s for s in present if s in stems]:
        synth.sounds_off()
        flush = np.zeros(2 * 4096, dtype=np.float32)
        for _ in range(int(5 * sr / 4096) + 1):   # let the previous stem's voices die out completely
            synth.generate(4096, memoryview(flush).cast("B"))
            if not flush.any():
                break
        shift = int((zone_shift or {}).get(stem, 0)) if stem != "drums" else 0
        for ch in range(16):             # the synthesiser is cached: every controller a stem may set starts anew
            for cc, val in ((7, 100), (11, 127), (64, 0), (10, 64)):
                synth.control_change(ch, cc, val)
            _set_zone_shift(synth, ch, 0 if ch == 9 else shift)      # bend range and wheel
        buf = np.zeros(2 * n_total, dtype=np.float32)
        pos, current = 0, {}
        for t, _, s, kind, ch, a, b, prog in sorted((e for e in events if e[2] == stem), key=lambda e: (e[0], e[1])):
            target = min(n_total, int(round(t * sr)))
            if target > pos:
                synth.generate(target - pos, memoryview(buf)[2 * pos:2 * target].cast("B"))
                pos = target
            if kind == "on":
                if current.get(ch) != prog:
                    _select(synth, sfid, ch, prog)
                    current[ch] = prog
                synth.noteon(ch, _key(a, shift, ch), b)
            elif kind == "off":
                synth.noteoff(ch, _key(a, shift, ch))
            elif kind == "cc":
                if shift and ch != 9 and a in _RANGE_CCS:     # the song's own RPN or reset would undo the shift
                    if a == 121:                              # reset the other controllers, then the shift again
                        synth.control_change(ch, a, b)
                        _set_zone_shift(synth, ch, shift)
                    continue
                synth.control_change(ch, a, b)
            elif kind == "bend":
                synth.pitchbend(ch, _bend(a, 0 if ch == 9 else shift))
        if pos < n_total:
            synth.generate(n_total - pos, memoryview(buf)[2 * pos:].cast("B"))
        out[stem] = buf.reshape(-1, 2).mean(axis=1).astype(np.float32)
    return out
