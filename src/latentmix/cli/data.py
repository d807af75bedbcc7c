"""`latentmix data ...`: synthesise the built-in Slakh-like dataset or render MIDI files through a SoundFont.

Both write the MSDM layout ROOT/{train,validation,test}/TrackNNNNN/{bass,drums,guitar,piano}.wav, mix.wav (their
sum: what `latentmix separate TRACK` separates) and metadata.json.
"""
from __future__ import annotations

import sys
import time


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="synthesise the built-in dataset or render MIDI files to stems",
                              description="Create datasets in the MSDM layout "
                                          "(ROOT/{train,validation,test}/TrackNNNNN/{bass,drums,guitar,piano}.wav "
                                          "and mix.wav, their sum).")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    sub.required = True

    s = sub.add_parser(
        "synth", help="compose and render a Slakh-like dataset (same seed -> byte-identical files)",
        description="Compose N songs (styles rock/funk/pop/jazz/electronic/ballad, GM programs the Slakh way) and "
                    "render bass, drums, guitar and piano stems at 22050 Hz (float32 WAV), plus song.mid and "
                    "metadata.json (tempo, key, style, programs, caption) per track. Splits are 80/10/10.",
        epilog="example: latentmix data synth --out data/synth --tracks 200 --seconds 20 --seed 0")
    s.add_argument("--out", required=True, help="output folder (created if missing)")
    s.add_argument("--tracks", type=int, default=100, help="number of songs (default 100)")
    s.add_argument("--seconds", type=float, default=20.0, help="length of each song in seconds (default 20)")
    s.add_argument("--seed", type=int, default=0, help="dataset seed; track i uses a seed derived from (seed, i)")
    s.add_argument("--renderer", choices=("procedural", "soundfont"), default="procedural",
                   help="procedural numpy synthesis (default, fast) or a General MIDI SoundFont")
    s.add_argument("--soundfont", help="the .sf2 file for --renderer soundfont "
                                       "(e.g. /usr/share/sounds/sf2/FluidR3_GM.sf2)")
    s.add_argument("--workers", type=int, default=None, help="parallel processes (default: min(2, CPUs))")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_synth)

    r = sub.add_parser(
        "render-midi", help="render MIDI files through a SoundFont into per-stem audio",
        description="Render each MIDI file through a General MIDI SoundFont, one stem class at a time, with the "
                    "Slakh program mapping: piano 0-7, guitar 24-31, bass 32-39, channel 10 drums, else 'other' "
                    "(other.wav is written when present).",
        epilog="example: latentmix data render-midi --midi songs/ --soundfont FluidR3_GM.sf2 --out data/midi")
    r.add_argument("--midi", required=True, help="a .mid file or a folder searched recursively for .mid/.midi")
    r.add_argument("--soundfont", required=True, help="General MIDI .sf2 SoundFont")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--seed", type=int, default=0, help="seed of the split assignment (default 0)")
    r.add_argument("--tail", type=float, default=1.0, help="seconds rendered after the last event (default 1)")
    r.add_argument("--splits", default="0.8,0.1,0.1",
                   help="train,validation,test fractions (default 0.8,0.1,0.1; '0,0,1' makes a test-only set)")
    r.add_argument("--workers", type=int, default=None, help="parallel processes (default: min(2, CPUs))")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_render_midi)


def _synth(args) -> int:
    from ..data.build import synth_dataset
    t = time.perf_counter()
    out = synth_dataset(args.out, args.tracks, args.seconds, seed=args.seed, renderer=args.renderer,
                        soundfont=args.soundfont, progress=not args.quiet, workers=args.workers)
    dt = time.perf_counter() - t
    print(f"wrote {args.tracks} tracks x {args.seconds:g} s to {out} in {dt:.1f} s "
          f"({args.tracks * args.seconds / max(dt, 1e-9):.1f}x real time)", file=sys.stdout)
    return 0


def _render_midi(args) -> int:
    from ..data.build import render_midi_dataset
    from ..errors import ConfigError
    if args.tail < 0:
        raise ConfigError(f"--tail must be >= 0, got {args.tail}")
    try:
        splits = tuple(float(v) for v in args.splits.split(","))
    except ValueError:
        raise ConfigError(f"--splits: expected three comma-separated fractions, got '{args.splits}'") from None
    out = render_midi_dataset(args.midi, args.soundfont, args.out, seed=args.seed, tail=args.tail, splits=splits,
                              progress=not args.quiet, workers=args.workers)
    print(f"wrote rendered MIDI stems to {out}", file=sys.stdout)
    return 0
