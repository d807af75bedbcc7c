"""Are the held-out test SoundFonts really unseen? For each test font and stem class, how many of the recorded
samples its General MIDI programs play are held bit for bit by each training font (and by all of them together).

A test set rendered with a font whose samples a training font shares is not an unseen-timbre test set.
--spectra adds a check for copies that are not bit for bit (resampled, re-looped): one note per General MIDI
program of the bass, guitar and piano classes through each font, and the correlation of their long-term log
spectra (1.00 where the two presets play one recording the same way).

    python benchmarks/soundfont_overlap.py --test FluidR3_GM=/usr/share/sounds/sf2/FluidR3_GM.sf2 \
        --train csound=/usr/share/sounds/sf2/sf_GMbank.sf2 --write --section soundfont-overlap
"""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parse_named, provenance, publish, run_main  # noqa: E402

from latentmix.data.sf2_samples import overlap  # noqa: E402
from latentmix.data.soundfont import CLASSES  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", action="append", required=True, metavar="NAME=PATH", help="a test SoundFont")
    ap.add_argument("--train", action="append", required=True, metavar="NAME=PATH", help="a training SoundFont")
    ap.add_argument("--spectra", action="store_true",
                    help="also a table of note-spectrum correlations per program (near-copies, not only bit-exact)")
    ap.add_argument("--note", default="", help="a sentence printed under the table")
    ap.add_argument("--write", action="store_true", help="replace --section of benchmarks/RESULTS.md")
    ap.add_argument("--section", default="soundfont-overlap")
    return ap.parse_args(argv)


def cell(r: dict) -> str:
    """'shared/total (frames %)', or '-' for a class the font has no samples for."""
    if not r["samples"]:
        return "-"
    return f"{r['shared']}/{r['samples']} ({100 * r['frames_share']:.0f} %)"


def table(tests, trains) -> str:
    rows = ["| test font | training font(s) | " + " | ".join(CLASSES) + " |",
            "|---|---|" + "---|" * len(CLASSES)]
    groups = [(n, [p]) for n, p in trains] + ([("all of them", [p for _, p in trains])] if len(trains) > 1 else [])
    for tname, tpath in tests:
        for gname, paths in groups:
            r = overlap(tpath, paths)
            rows.append(f"| {tname} | {gname} | " + " | ".join(cell(r[c]) for c in CLASSES) + " |")
    return "\n".join(rows)


# the programs --spectra plays, one note each (E2 for bass, C4 otherwise: KEY)
SPECTRA = {"bass": (32, 33, 34, 35, 36, 37, 38, 39), "guitar": (24, 25, 26, 27, 28, 29, 30, 31),
           "piano": (0, 1, 2, 3, 4, 5, 6, 7)}
KEY = {"bass": 40, "guitar": 60, "piano": 60}


@functools.lru_cache(maxsize=None)
def note_spectrum(font: str, program: int, key: int):
    """Standardised long-term log-magnitude spectrum (0-8 kHz) of one 1 s note of `program` through `font`."""
    import mido
    import numpy as np

    from latentmix.data.soundfont import render_midi
    mid = mido.MidiFile(ticks_per_beat=480)
    mid.tracks.append(mido.MidiTrack([mido.Message("program_change", program=program, time=0),
                                      mido.Message("note_on", note=key, velocity=100, time=0),
                                      mido.Message("note_off", note=key, velocity=0, time=960)]))
    x = next(iter(render_midi(mid, font, tail=0.3).values()))
    n = 4096
    frames = x[1000:1000 + 4 * n].reshape(-1, n) * np.hanning(n)
    v = np.log(np.abs(np.fft.rfft(frames, axis=1)).mean(0)[:int(8000 * n / 22050)] + 1e-6)
    return (v - v.mean()) / (v.std() + 1e-12)


def spectra_table(tests, trains) -> str:
    """Per test font, training font and class: the mean and the highest correlation over the class's programs."""
    import numpy as np
    rows = ["| test font | training font | " + " | ".join(f"{c}: mean / max (program)" for c in SPECTRA) + " |",
            "|---|---|" + "---|" * len(SPECTRA)]
    for tname, tpath in tests:
        for gname, gpath in trains:
            cells = []
            for cls, programs in SPECTRA.items():       # each font's notes are rendered once (cached)
                r = [float(np.mean(note_spectrum(tpath, p, KEY[cls]) * note_spectrum(gpath, p, KEY[cls])))
                     for p in programs]
                cells.append(f"{np.mean(r):.2f} / {max(r):.2f} ({programs[int(np.argmax(r))]})")
            rows.append(f"| {tname} | {gname} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def run(argv=None) -> int:
    args = parse_args(argv)
    tests = parse_named(args.test, "--test")
    trains = parse_named(args.train, "--train")
    md = "\n\n".join(x for x in [
        provenance(__file__, argv),
        "Each cell: of the recorded samples the test font plays for that stem class (its General MIDI programs in "
        "bank 0; drums: the bank-128 standard kit), how many the training font(s) hold bit for bit, and in "
        "brackets their share of the class's sample frames. Bit-identical is a lower bound: a resampled or "
        "re-edited copy is not counted.",
        table(tests, trains),
        "Note spectra (--spectra): per class, the mean and the highest correlation of one note's long-term log "
        "spectrum over its 8 General MIDI programs (E2 for bass, C4 otherwise); 1.00 is the same recording played "
        "the same way. For scale: TimGM6mb and the csound GM bank share bass and guitar samples bit for bit; "
        "two fonts with no recording in common still correlate 0.5-0.9 (notes of one pitch share their "
        "harmonics' positions)." if args.spectra else "",
        spectra_table(tests, trains) if args.spectra else "", args.note] if x)
    publish(md, args.section, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(run))
