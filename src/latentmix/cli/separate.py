"""`latentmix separate`: mixtures in, `OUT/<song>/<stem>.wav` out, with any registered method.

Long files are cut into overlapping hop-aligned segments and stitched (separation.apply.separate_long), as demucs
does.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .. import SAMPLE_RATE
from ..audio import AUDIO_EXTENSIONS, find_audio, read_audio, write_audio
from ..device import resolve_device
from ..errors import ConfigError, InputError
from ..metrics.protocols import load_stems
from ..separation.apply import separate_long
from ..separation.registry import get_method
from ..validation import arg

EPILOG = """inputs: audio files or folders (searched recursively) holding mixtures. For --method oracle-irm
(which reads the true stems) give MSDM track folders holding bass.wav, drums.wav, ... (the mixture is the sum
of the stems), a folder of such track folders, or a mixture file lying next to its stem files."""


def register(subparsers) -> None:
    p = subparsers.add_parser("separate", help="separate mixtures into stems",
                              description="Separate each mixture into stems and write OUT/<song>/<stem>.wav.",
                              epilog=EPILOG)
    p.add_argument("inputs", nargs="+", metavar="MIX", help="audio files or folders")
    p.add_argument("-o", "--out", default="separated", help="output folder (default: separated)")
    p.add_argument("--method", default="supervised", help="separation method (default: supervised)")
    p.add_argument("--stems", default=None, help="comma-separated stems to write (default: all of the method's)")
    p.add_argument("--segment", type=arg("seconds"), default=None,
                   help="segment length in seconds (default: method's)")
    p.add_argument("--overlap", type=arg("fraction"), default=0.25,
                   help="overlap between segments, 0..1 (default 0.25)")
    p.add_argument("--batch-size", type=arg("count"), default=4, help="segments per model call (default 4)")
    p.add_argument("--fix-nonfinite", action="store_true",
                   help="replace NaN/inf input samples with 0 (default: refuse)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--model", default=None, help="model file for methods that load one")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--report", action="store_true", help="also write an HTML report to OUT/report/index.html")
    b = p.add_argument_group("Bayesian methods (lq-vae, lass, hybrid)")
    b.add_argument("--beams", type=int, default=None, help="beam search with this many beams")
    b.add_argument("--chains", type=int, default=None, help="ancestral sampling with this many chains")
    b.add_argument("--priors", default=None, metavar="BASS,DRUMS", help="the two prior files (default: shipped)")
    b.add_argument("--counts", default=None, help="counts file for lass / hybrid (default: shipped)")
    b.add_argument("--select", default=None, help="posterior, mixture, agreement or mean (default: the method's)")
    b.add_argument("--levels", type=int, default=None, help="residual levels the likelihood searches")
    b.add_argument("--seed", type=int, default=None, help="seed of the sampler (default 0)")
    p.set_defaults(func=run)


def parse_stems(spec: str | None, available) -> list[str]:
    """'bass,drums' -> ['bass', 'drums'], each checked against the method's stems."""
    if not spec:
        return list(available)
    stems = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in stems if s not in available]
    if bad or not stems:
        raise ConfigError(f"--stems {spec}: unknown stem(s) {', '.join(bad) or '(none given)'} "
                          f"(this method gives: {', '.join(available)})")
    return stems


def _has_stems(folder: Path, stems) -> bool:
    return any((folder / f"{s}{e}").is_file() for s in stems for e in AUDIO_EXTENSIONS)


def collect_reference_tracks(inputs, stems) -> list[tuple[str, Path | None, Path]]:
    """(song, mixture file or None, folder with the stem files) for methods that need references."""
    out = []
    for p in map(Path, inputs):
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_file():
            if not _has_stems(p.parent, stems):
                raise InputError(f"{p}: no stem files ({', '.join(stems)}) next to this mixture")
            song = p.parent.name if p.stem.lower() in ("mix", "mixture") else p.stem
            out.append((song, p, p.parent))
        elif _has_stems(p, stems):
            out.append((p.name, None, p))
        else:
            found = sorted({f.parent for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS
                            and f.stem in stems})
            if not found:
                raise InputError(f"{p}: no track folders with {'/'.join(stems)} stem files")
            out.extend((d.name, None, d) for d in found)
    return out


def _check_lengths(jobs, hop: int) -> None:
    """Before anything is written: every mixture file holds at least one frame (`hop` samples at 22050 Hz)."""
    from ..audio import info
    for _song, mix_file, _stems in jobs:
        if mix_file is None:
            continue
        frames, sr = info(mix_file)
        if frames * SAMPLE_RATE / sr < hop:
            raise InputError(f"{mix_file}: {frames} samples at {sr} Hz, shorter than one frame of the method "
                             f"({hop} samples at {SAMPLE_RATE} Hz)")


def run(args) -> int:
    device = resolve_device(args.device)
    bayes = {k: getattr(args, k) for k in ("beams", "chains", "priors", "counts", "select", "levels", "seed")}
    for k in ("beams", "chains", "levels"):
        if bayes[k] is not None and bayes[k] < 1:
            raise ConfigError(f"--{k} must be >= 1, got {bayes[k]}")
    method = get_method(args.method, model=args.model, device=device, **bayes)
    stems = parse_stems(args.stems, method.stems)
    if not 0 <= args.overlap < 1:
        raise ConfigError(f"--overlap {args.overlap}: must be in [0, 1)")
    if args.segment is not None and args.segment <= 0:
        raise ConfigError(f"--segment {args.segment}: must be positive")
    if method.needs_references:
        jobs = collect_reference_tracks(args.inputs, method.stems)
    else:
        jobs = [(f.stem, f, None) for f in find_audio(args.inputs)]
    _check_lengths(jobs, int(getattr(method, "min_samples", 1) or 1))   # Bayesian methods need a codec frame
    out_root = Path(args.out)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    log(f"Separating {len(jobs)} track(s) with '{args.method}' on {device} into {out_root}")
    mixtures = {}
    for i, (song, mix_file, stem_dir) in enumerate(jobs, 1):
        log(f"[{i}/{len(jobs)}] {mix_file or stem_dir}")
        refs = None
        if stem_dir is not None:
            refs = load_stems(stem_dir, method.stems, SAMPLE_RATE)[None]           # (1, S, T)
        if mix_file is not None:
            mix = read_audio(mix_file, SAMPLE_RATE, fix_nonfinite=args.fix_nonfinite)[:1][None]      # (1, 1, T)
            if refs is not None:
                T = min(mix.shape[-1], refs.shape[-1])
                mix, refs = mix[..., :T], refs[..., :T]
        else:
            mix = refs.sum(1, keepdim=True)
        est = separate_long(method, mix.to(device), None if refs is None else refs.to(device), args.segment,
                            args.overlap, SAMPLE_RATE, args.batch_size, progress=not args.quiet)
        est = est[0].cpu()
        for s in stems:
            path = out_root / song / f"{s}.wav"
            write_audio(path, est[method.stems.index(s)][None], SAMPLE_RATE)
        mixtures[song] = mix_file
        print(out_root / song)
    if args.report:
        from ..report import separation_page
        page = separation_page(out_root, out_root / "report", mixtures=mixtures,
                               title=f"Separation with '{args.method}'")
        log(f"report: {page}")
    return 0
