"""`latentmix data ...`: synthesise the built-in Slakh-like dataset or render MIDI files through a SoundFont.

Both write the MSDM layout ROOT/{train,validation,test}/TrackNNNNN/{bass,drums,guitar,piano}.wav, mix.wav (their
sum: what `latentmix separate TRACK` separates) and metadata.json.
"""
from __future__ import annotations

import sys
import time

from ..validation import arg


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="synthesise the built-in dataset or render MIDI files to stems",
                              description="Create datasets in the MSDM layout "
                                          "(ROOT/{train,validation,test}/TrackNNNNN/{bass,drums,guitar,piano}.wav "
                                          "and mix.wav, their sum).")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    sub.required = True

    s = _subcommand(
        sub, "synth", _synth, {}, "output folder (created if missing)",
        help="compose and render a Slakh-like dataset (same seed -> byte-identical files)",
        description="Compose N songs (styles rock/funk/pop/jazz/electronic/ballad, GM programs the Slakh way) and "
                    "render bass, drums, guitar and piano stems (and other, see --other-prob) at 22050 Hz "
                    "(float32 WAV), plus song.mid and metadata.json (tempo, key, style, programs, caption) per "
                    "track. Splits are 80/10/10.",
        epilog="example: latentmix data synth --out data/synth --tracks 200 --seconds 20 --seed 0")
    s.add_argument("--tracks", type=arg("count"), default=100, help="number of songs (default 100)")
    s.add_argument("--seconds", type=arg("seconds"), default=20.0, help="length of each song in seconds (default 20)")
    s.add_argument("--seed", type=arg("seed"), default=0,
                   help="dataset seed; track i uses a seed derived from (seed, i)")
    s.add_argument("--renderer", choices=("procedural", "soundfont"), default="procedural",
                   help="procedural numpy synthesis (default, fast) or a General MIDI SoundFont")
    s.add_argument("--soundfont", help="the .sf2 file for --renderer soundfont "
                                       "(e.g. /usr/share/sounds/sf2/FluidR3_GM.sf2)")
    s.add_argument("--other-prob", type=arg("probability"), default=0.0,
                   help="each song's chance of an 'other' part (strings, brass, synth lead or pad), written as "
                        "other.wav and included in mix.wav (default 0: bass, drums, guitar and piano only)")
    _progress_args(s)

    r = _subcommand(
        sub, "render-midi", _render_midi,
        {"--midi": "a .mid file or a folder searched recursively for .mid/.midi",
         "--soundfont": "General MIDI .sf2 SoundFont"}, "output folder",
        help="render MIDI files through a SoundFont into per-stem audio",
        description="Render each MIDI file through a General MIDI SoundFont, one stem class at a time, with the "
                    "Slakh program mapping: piano 0-7, guitar 24-31, bass 32-39, channel 10 drums, else 'other' "
                    "(other.wav is written when present).",
        epilog="example: latentmix data render-midi --midi songs/ --soundfont FluidR3_GM.sf2 --out data/midi")
    r.add_argument("--seed", type=arg("seed"), default=0, help="seed of the split assignment (default 0)")
    r.add_argument("--tail", type=arg("non_negative"), default=1.0,
                   help="seconds rendered after the last event (default 1)")
    r.add_argument("--splits", default="0.8,0.1,0.1",
                   help="train,validation,test fractions (default 0.8,0.1,0.1; '0,0,1' makes a test-only set)")
    _progress_args(r)

    q = _subcommand(
        sub, "pairs", _pairs, {"--data": "MSDM-layout data root"}, "output folder",
        help="bass + drums pair sets for Bayesian separation (coherent and incoherent, 70/30)",
        description="Split the tracks of DATA's splits by track into train and test (seeded), and pair within each "
                    "part every track's bass with its own drums (coherent) and with another track's drums "
                    "(incoherent). Writes OUT/{train,test}/PairNNNNN/{bass,drums}.wav (links to the sources) + "
                    "metadata.json; the mixture is 0.5 (bass + drums) (the lass protocol).",
        epilog="example: latentmix data pairs --data data/slakhlike --out data/pairs --seed 0")
    q.add_argument("--splits", default="train,validation,test", help="source splits to pair (default: all three)")
    q.add_argument("--test-fraction", type=float, default=0.3, help="share of tracks in the test part (default 0.3)")
    q.add_argument("--seed", type=int, default=0, help="seed of the split and the pairing (default 0)")
    q.add_argument("--copy", action="store_true", help="copy the stem files instead of linking them")

    c = _subcommand(
        sub, "counts", _counts, {"--pairs": "a pair set (latentmix data pairs) or any MSDM-layout root"},
        "counts file (.safetensors), created or extended",
        help="count (z_bass, z_drums, z_mix) code triplets over pairs (LASS's likelihood), resumable",
        description="Encode every pair of PAIRS/SPLIT and its 0.5 (bass + drums) mixture with the codec and add "
                    "their code triplets (both orders) to OUT, a sparse counts file; pairs already counted in OUT "
                    "are skipped, and OUT is saved after every pair.",
        epilog="example: latentmix data counts --pairs data/pairs --out runs/counts.safetensors")
    c.add_argument("--split", default="train", help="split to count (default train)")
    c.add_argument("--codec", default=None, help="codec model file (default: the shipped codec)")
    c.add_argument("--levels", type=int, default=4, help="residual levels to count (default 4)")
    _progress_args(c, workers=False)

    _register_sf2_overlap(sub)
    _register_make_sf2(sub)


def _register_make_sf2(sub) -> None:
    """`latentmix data make-sf2`: its parser."""
    m = _subcommand(
        sub, "make-sf2", _make_sf2, {"--cfg": "a timidity config naming GUS .pat patches "
                                              "(e.g. /etc/timidity/freepats.cfg, Debian's freepats)"},
        "the SoundFont (.sf2) to write",
        help="turn a GUS patch set (and optionally a folder of sampled piano notes) into one .sf2",
        description="Convert the bank 0 and drumset 0 patches of a timidity config into a General MIDI "
                    "SoundFont that `data synth --renderer soundfont`, `render-midi`, training's "
                    "synth:soundfont=PATH roots and `sf2-overlap` read. Envelopes follow timidity's reading of "
                    "the patches; vibrato and tremolo are dropped. --note-samples replaces --note-programs with "
                    "one-shot recordings named by note (C4.wav, D#1v10.ogg; C4 = key 60), e.g. the Salamander "
                    "grand piano; --program-sample plays one recording (e.g. an lmms-common instrument), or a "
                    "folder of note recordings, on the programs named; --drum-kit plays a Hydrogen kit's velocity "
                    "layers on the drum keys it has.",
        epilog="example: latentmix data make-sf2 --cfg /etc/timidity/freepats.cfg --note-samples salamander/ "
               "--out freepats_salamander.sf2")
    m.add_argument("--note-samples", default=None, help="folder of one-shot note recordings (optional)")
    m.add_argument("--note-programs", default="0,1",
                   help="GM programs (0-based) the note samples play (default 0,1: acoustic and bright piano)")
    m.add_argument("--program-sample", action="append", default=[], metavar="PROGRAMS=FILE[@KEY]",
                   help="play one one-shot recording on these GM programs (0-based, e.g. 24-25,27), transposed "
                        "from its pitch (estimated, or KEY: 60 = C4), or a FOLDER of recordings named by note "
                        "(as --note-samples); repeat for more, e.g. "
                        "24-25=/usr/share/lmms/samples/instruments/steel_guitar01.ogg@48 (lmms-common)")
    m.add_argument("--drum-kit", default=None,
                   help="a Hydrogen drum kit folder (drumkit.xml and its samples, e.g. Debian's hydrogen-drumkits) "
                        "whose instruments, mapped to GM drum keys by name, replace the config's drums on those keys")


def _register_sf2_overlap(sub) -> None:
    """`latentmix data sf2-overlap`: its parser (no --out: it only reads)."""
    o = sub.add_parser(
        "sf2-overlap", help="check that a test SoundFont shares no recorded samples with the training SoundFonts",
        description="For each stem class (bass, drums, guitar, piano, other: the General MIDI programs the "
                    "renderer maps to it), count the samples TEST plays that a --train SoundFont holds bit for bit. "
                    "A test set rendered with a font that shares samples with a training font is not an "
                    "unseen-timbre test. Bit-identical is a lower bound: a resampled copy is not counted.",
        epilog="example: latentmix data sf2-overlap --test TimGM6mb.sf2 --train sf_GMbank.sf2 --strict")
    o.add_argument("--test", required=True, help="the test SoundFont (.sf2)")
    o.add_argument("--train", required=True, action="append", help="a training SoundFont (.sf2; repeatable)")
    o.add_argument("--strict", action="store_true", help="exit with status 1 when any sample is shared")
    o.set_defaults(func=_sf2_overlap)


def _subcommand(sub, name: str, func, inputs: dict, out: str, **texts):
    """The parser of `latentmix data NAME`, run by func: its required input options ({flag: help}), then --out
    (help `out`); texts are add_parser's help, description and epilog. The caller adds the rest."""
    p = sub.add_parser(name, **texts)
    for flag, text in inputs.items():
        p.add_argument(flag, required=True, help=text)
    p.add_argument("--out", required=True, help=out)
    p.set_defaults(func=func)
    return p


def _progress_args(p, workers: bool = True) -> None:
    """The last options of the long-running subcommands: --workers (where they run in parallel), --quiet."""
    if workers:
        p.add_argument("--workers", type=arg("count"), default=None, help="parallel processes (default: min(2, CPUs))")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _synth(args) -> int:
    from ..data.build import synth_dataset
    t = time.perf_counter()
    out = synth_dataset(args.out, args.tracks, args.seconds, seed=args.seed, renderer=args.renderer,
                        soundfont=args.soundfont, progress=not args.quiet, workers=args.workers,
                        other_prob=args.other_prob)
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


def _pairs(args) -> int:
    from ..data.pairs import build_pairs
    splits = tuple(x.strip() for x in args.splits.split(",") if x.strip())
    n = build_pairs(args.data, args.out, splits, args.test_fraction, args.seed, args.copy)
    print(f"wrote {n['train']} train and {n['test']} test pairs to {args.out}", file=sys.stdout)
    return 0


def _counts(args) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from ..codec.model import Codec
    from ..data.datasets import list_tracks
    from ..data.pairs import iter_pairs
    from ..errors import ConfigError
    from ..pretrained.registry import resolve_model
    from ..priors.shards import codec_hash
    from ..separation.bayesian.counts import CodeCounts
    codec = Codec.load(resolve_model(args.codec, "codec"))
    if not 1 <= args.levels <= codec.num_codebooks:
        raise ConfigError(f"--levels must be in 1..{codec.num_codebooks}, got {args.levels}")
    out = Path(args.out)
    counts = CodeCounts.load(out) if out.exists() else \
        CodeCounts(codec.codebook_size, args.levels, codec_hash(codec))
    if counts.codec_hash != codec_hash(codec) or counts.levels != args.levels:
        raise ConfigError(f"{out}: counts of another codec or number of levels; write a new file")
    total = len(list_tracks(args.pairs, args.split))
    with tqdm(total=total, unit="pair", disable=True if args.quiet else None, file=sys.stderr) as bar:
        bar.update(min(total, counts.pairs))
        n = counts.update(codec, iter_pairs(args.pairs, args.split, codec.sample_rate), save_to=out,
                          progress=bar.update)
    sizes = ", ".join(f"level {i}: {k.numel()}" for i, k in enumerate(counts.keys))
    print(f"counted {n} new pair(s), {counts.pairs} in all; distinct triplets {sizes}; {out}", file=sys.stdout)
    return 0


def _program_sample(value: str) -> tuple[tuple[int, ...], str, float | None]:
    """'24-25,27=FILE@48' -> ((24, 25, 27), 'FILE', 48.0); ConfigError naming the value when malformed. Only a
    trailing '@' and number is a key, so a path with '@' in it stays whole."""
    import re

    from ..errors import ConfigError
    bad = ConfigError(f"--program-sample: expected PROGRAMS=FILE[@KEY] with programs 0..127 "
                      f"(e.g. 24-25=guitar.ogg@48), got '{value}'")
    progs, sep, rest = value.partition("=")
    m = re.fullmatch(r"(.+)@(\d+(?:\.\d+)?)", rest)
    path, key = (m.group(1), float(m.group(2))) if m else (rest, None)
    ranges = [part.split("-") for part in progs.split(",")]
    if not sep or not path or (key is not None and key > 127) or \
            not all(1 <= len(r) <= 2 and all(re.fullmatch(r"\d{1,3}", v) for v in r) for r in ranges):
        raise bad
    ends = [(int(r[0]), int(r[-1])) for r in ranges]
    if not all(0 <= a <= b <= 127 for a, b in ends):
        raise bad
    return tuple(dict.fromkeys(p for a, b in ends for p in range(a, b + 1))), path, key   # 24-25,25: once


def _make_sf2(args) -> int:
    from ..data.gus_patch import convert
    from ..errors import ConfigError
    try:
        programs = tuple(int(v) for v in args.note_programs.split(","))
    except ValueError:
        raise ConfigError(f"--note-programs: expected comma-separated GM program numbers, "
                          f"got '{args.note_programs}'") from None
    if not all(0 <= p <= 127 for p in programs):
        raise ConfigError(f"--note-programs: programs are 0..127, got '{args.note_programs}'")
    info = convert(args.cfg, args.out, note_samples=args.note_samples, programs=programs, drum_kit=args.drum_kit,
                   program_samples=[_program_sample(v) for v in args.program_sample])
    print(f"wrote {args.out}: {info['presets']} presets, {info['drum_notes']} drum notes, {info['samples']} samples, "
          f"{info['bytes'] / 1e6:.1f} MB", file=sys.stdout)
    return 0


def _sf2_overlap(args) -> int:
    from ..data.sf2_samples import overlap
    res = overlap(args.test, args.train)
    print(f"{args.test}: samples also in {', '.join(args.train)}", file=sys.stdout)
    for cls, r in res.items():
        share = f" ({100 * r['frames_share']:.0f} % of its sample frames)" if r["samples"] else ""
        print(f"  {cls:7s} {r['shared']} of {r['samples']}{share}", file=sys.stdout)
    shared = sum(r["shared"] for r in res.values())
    return 1 if args.strict and shared else 0
