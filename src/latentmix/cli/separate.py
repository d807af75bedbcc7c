"""`latentmix separate`: mixtures in, `OUT/<track>/<stem>.<ext>` out, as demucs does, with any registered method.

Inputs are audio files, track folders (their `mix.wav`, or the sum of their stem files when there is none) and
folders searched for both. Each track is read at its own rate and channels, separated per channel at the model's
rate (separation.apply, chunked as demucs does), and written back at the input's rate and channels with the band
above the model's shared out so the stems sum to the input (separation.fullband). Output paths, names,
collisions, `--force`/`--skip-existing` and all-or-nothing writes are latentmix.outputs'. A bad track is reported
and the batch goes on; the exit status is then 2, after a summary.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import SAMPLE_RATE, STEMS
from ..errors import ConfigError, InputError, LatentmixError, OutputError
from ..formats import AudioFormat, add_format_arguments
from ..outputs import AUDIO_EXTENSIONS, OutputRoot, Transaction, is_file_target, sanitize, target, unique
from ..validation import arg

MIX_NAMES = ("mix", "mixture")
TRACK_STEMS = STEMS + ("other",)

EPILOG = """\
examples:
  latentmix separate song.mp3 -o separated                 # separated/song/{bass,drums,guitar,piano}.wav
  latentmix separate song.mp3 --two-stems bass --mp3 -o out  # out/song/bass.mp3, out/song/no_bass.mp3
  latentmix separate music/ -o sep -j 2 --skip-existing      # a folder, two tracks at a time, resumable
  latentmix separate DATA/test/Track00002 -o sep             # a track folder: its mix.wav (or stems' sum)
  latentmix separate DATA/test --method oracle-irm -o irm     # the ideal-ratio-mask ceiling (reads the stems)
  latentmix separate song.wav --stems bass -o bass.flac       # one stem, one file

Stems come back at the input's sample rate and channels (more than two channels: downmixed to stereo);
--sr and --mono choose otherwise. --filename fields: {track} (the input's name; a mix.wav is named after its
folder), {trackext} (with its extension), {stem}, {ext}. An existing output is kept unless --force.
For --method oracle-irm give MSDM track folders (bass.wav, drums.wav, ...), a folder of them, or a mixture file
next to its stem files; it writes at the stems' rate, mono."""


def known_methods() -> list[str]:
    from ..separation.registry import _BUILTIN, _FACTORIES
    return sorted(set(_BUILTIN) | set(_FACTORIES))


def register(subparsers) -> None:
    p = subparsers.add_parser("separate", help="separate mixtures into stems",
                              description="Separate each mixture into stems and write OUT/<track>/<stem>.wav.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="MIX", help="audio files, track folders or folders of them")
    p.add_argument("-o", "--out", default="separated",
                   help="output folder (default: separated); a path ending in .wav/.flac/.mp3 is one file, for one "
                        "input and one stem")
    p.add_argument("-n", "--name", default=None, help="a shipped separator by name (see `latentmix models`)")
    p.add_argument("--model", default=None, metavar="FILE", help="a separator model file")
    p.add_argument("--method", default="supervised",
                   help=f"separation method: {', '.join(known_methods())} (default: supervised)")
    p.add_argument("--stems", default=None, help="comma-separated stems to write (default: all of the method's)")
    p.add_argument("--two-stems", default=None, metavar="STEM", help="write STEM and its complement no_STEM")
    p.add_argument("--filename", default="{track}/{stem}.{ext}",
                   help="output path under -o (default: {track}/{stem}.{ext})")
    p.add_argument("--sr", type=int, default=None, help="output sample rate (default: the input's)")
    p.add_argument("--mono", action="store_true", help="write mono stems (default: the input's channels)")
    add_format_arguments(p)
    p.add_argument("-j", "--jobs", type=arg("count"), default=1, help="tracks separated at once (default 1)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--skip-existing", action="store_true", help="skip a track whose outputs all exist")
    p.add_argument("--segment", type=arg("seconds"), default=None,
                   help="segment length in seconds (default: method's)")
    p.add_argument("--overlap", type=arg("fraction"), default=0.25,
                   help="overlap between segments, 0..1 (default 0.25)")
    p.add_argument("--batch-size", type=arg("count"), default=4, help="segments per model call (default 4)")
    p.add_argument("--shifts", type=int, default=0, metavar="N",
                   help="test-time augmentation: average N separations of the input delayed by random offsets "
                        "up to 0.5 s (N times slower; default 0, off)")
    p.add_argument("--fix-nonfinite", action="store_true",
                   help="replace NaN/inf input samples with 0 (default: refuse)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--report", action="store_true", help="also write an HTML report to OUT/report/index.html")
    p.add_argument("--manifest", action="store_true",
                   help="record each finished track in OUT/manifest.jsonl and skip recorded tracks on a rerun "
                        "(always on under torchrun, which shards the tracks over its ranks)")
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


# ---------------------------------------------------------------- inputs


@dataclass
class Item:
    """One track to separate: its name, the mixture file (None: the sum of `stem_files`) and its stem files."""
    track: str
    trackext: str
    mix: Path | None
    stem_files: dict = field(default_factory=dict)      # stem name -> file
    error: str | None = None                            # the input could not be used (reported in the batch)
    outputs: dict = field(default_factory=dict)         # output name -> path (planned)

    @property
    def label(self) -> str:
        return str(self.mix or (next(iter(self.stem_files.values())).parent if self.stem_files else self.track))


def _audio_in(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)


def _stem_files(folder: Path, stems) -> dict:
    found = {}
    for f in _audio_in(folder):
        if f.stem in stems and f.stem not in found:
            found[f.stem] = f
    return found


def _mix_file(folder: Path) -> Path | None:
    return next((f for f in _audio_in(folder) if f.stem.lower() in MIX_NAMES), None)


def _track_name(f: Path) -> str:
    return f.resolve().parent.name if f.stem.lower() in MIX_NAMES else f.stem


def _folder_item(d: Path, stems) -> Item | None:
    mix, found = _mix_file(d), _stem_files(d, stems)
    if mix is None and not found:
        return None
    name = d.resolve().name
    return Item(name, name, mix, found)


def collect(inputs, needs_references: bool, stems) -> list[Item]:
    """Items for every input: a file is a track (its stem files beside it count for reference methods), a track
    folder (a mix file or stem files) is one track, other folders are searched for both. An input that does not
    exist or holds nothing becomes an item with an `error`."""
    items: list[Item] = []
    track_stems = tuple(stems) if needs_references else TRACK_STEMS
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            items.append(Item(p.name, p.name, p, error=f"{p}: no such file or folder"))
        elif p.is_file():
            found = _stem_files(p.parent, track_stems) if needs_references else {}
            err = None
            if needs_references and not found:
                err = f"{p}: no stem files ({', '.join(track_stems)}) next to this mixture"
            items.append(Item(_track_name(p), p.name, p, found, error=err))
        else:
            before = len(items)
            _walk(p, items, track_stems, needs_references)
            if len(items) == before:
                what = f"track folders with {'/'.join(track_stems)} stem files" if needs_references else "audio files"
                items.append(Item(p.name, p.name, None, error=f"{p}: no {what}"))
    return items


def _walk(d: Path, items: list, stems, needs_references: bool) -> None:
    item = _folder_item(d, stems)
    if item is not None and (item.stem_files or not needs_references):
        items.append(item)
        return
    if not needs_references:
        items.extend(Item(_track_name(f), f.name, f) for f in _audio_in(d))
    for sub in sorted(q for q in d.iterdir() if q.is_dir() and not q.name.startswith(".")):
        _walk(sub, items, stems, needs_references)


def plan(items: list[Item], names: list[str], args, fmt: AudioFormat) -> OutputRoot:
    """Give every item distinct track names and its output paths (checked by outputs.OutputRoot)."""
    inputs = [f for it in items for f in ([it.mix] if it.mix else []) + list(it.stem_files.values())]
    kind, out = target(args.out, len(items))
    root = OutputRoot(out.parent if kind == "file" else out, inputs, args.force, args.skip_existing)
    if kind == "file" and out.suffix.lower() not in AUDIO_EXTENSIONS:
        raise OutputError(f"-o {out}: separate writes audio; give an audio file name or a folder")
    if kind == "file" and len(names) != 1:
        raise OutputError(f"-o {out}: names one file, but separate writes {len(names)} stems "
                          f"({', '.join(names)}); give a folder, or one stem with --stems")
    good = [it for it in items if it.error is None]
    for it, name in zip(good, unique(sanitize(it.track) for it in good)):
        it.track = name
    seen: set[Path] = set()
    for it in good:
        for n in names:
            p = root.check(out) if kind == "file" else root.template(
                args.filename, track=it.track, trackext=it.trackext, stem=n, ext=fmt.ext)
            base, k = p, 2
            while p.resolve() in seen:             # a template without {track}: files of two tracks collide
                p, k = base.with_name(f"{base.stem}_{k}{base.suffix}"), k + 1
            seen.add(p.resolve())
            it.outputs[n] = p
    return root


# ---------------------------------------------------------------- one track


class Separation:
    """What every track shares: the method, the output names and format, and the options."""

    def __init__(self, args, method, stems: list[str]):
        self.args, self.method, self.stems = args, method, stems
        self.fmt = AudioFormat.from_args(args)
        self.model_sr = int(getattr(method, "sample_rate", SAMPLE_RATE))
        self.two = args.two_stems
        self.names = [self.two, f"no_{self.two}"] if self.two else list(stems)

    def read(self, it: Item):
        """-> (mixture (C, T) at sr, sr, references (1, S, Tm) at the model rate or None)."""
        from ..audio import info, read_audio
        from ..metrics.protocols import load_stems
        if self.method.needs_references:                                     # the stems' rate, mono
            refs = load_stems(it.stem_files[next(iter(it.stem_files))].parent, self.method.stems, self.model_sr)
            if it.mix is not None:
                mix = read_audio(it.mix, self.model_sr, fix_nonfinite=self.args.fix_nonfinite)[:1]
                T = min(mix.shape[-1], refs.shape[-1])
                mix, refs = mix[..., :T], refs[..., :T]
            else:
                mix = refs.sum(0, keepdim=True)
            return mix, self.model_sr, refs[None]
        if it.mix is not None:
            return read_audio(it.mix, sr=None, mono=False, fix_nonfinite=self.args.fix_nonfinite), \
                info(it.mix)[1], None
        files = list(it.stem_files.values())                                 # a track folder without a mix
        sr = info(files[0])[1]
        wavs = [read_audio(f, sr=sr, mono=False, fix_nonfinite=self.args.fix_nonfinite) for f in files]
        T, C = min(w.shape[-1] for w in wavs), max(w.shape[0] for w in wavs)
        return sum(w[:, :T].expand(C, T) for w in wavs).contiguous(), sr, None

    def __call__(self, it: Item, progress: bool, log) -> list[Path]:
        from ..formats import clip
        from ..separation.fullband import separate_audio
        wav, sr_in, refs = self.read(it)
        need = int(getattr(self.method, "min_samples", 1) or 1)            # Bayesian methods need a codec frame
        if wav.shape[-1] * self.model_sr / sr_in < need:
            raise InputError(f"{it.label}: {wav.shape[-1]} samples at {sr_in} Hz, shorter than one frame of the "
                             f"method ({need} samples at {self.model_sr} Hz)")
        sr = int(self.args.sr or sr_in)
        self.fmt.check_rate(sr)
        stems, mix_out, note = separate_audio(self.method, wav, sr_in, sr, self.args.mono, self.args.segment,
                                              self.args.overlap, self.args.batch_size, progress, refs,
                                              shifts=self.args.shifts)
        if note:
            log(f"note: {it.label}: {note}")
        order = list(self.method.stems)
        if self.two:
            one = stems[:, order.index(self.two)]
            arrays = {self.two: one, f"no_{self.two}": mix_out - one}
        else:
            arrays = {s: stems[:, order.index(s)] for s in self.stems}
        arrays = clip(arrays, self.args.clip_mode)
        with Transaction(self.args.force) as tx:
            for name, path in it.outputs.items():
                self.fmt.for_path(path).write(tx.temp(path), arrays[name], sr)
        return list(it.outputs.values())


# ---------------------------------------------------------------- the batch


def run(args) -> int:
    from ..device import resolve_device
    if not 0 <= args.overlap < 1:
        raise ConfigError(f"--overlap {args.overlap}: must be in [0, 1)")
    if args.segment is not None and not args.segment > 0:
        raise ConfigError(f"--segment {args.segment}: must be positive")
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be at least 1")
    if args.shifts < 0:
        raise ConfigError(f"--shifts {args.shifts}: must be 0 (off) or more")
    if args.sr is not None and not 1000 <= args.sr <= 384000:
        raise ConfigError(f"--sr {args.sr}: must be a sample rate in 1000..384000 Hz")
    if args.force and args.skip_existing:
        raise ConfigError("--force and --skip-existing: choose one")
    model = args.model
    if args.name is not None:
        if args.model is not None:
            raise ConfigError("-n/--name and --model: choose one (a shipped name, or a file)")
        from ..pretrained.registry import resolve_name
        model = str(resolve_name(args.name, "separator"))
    AudioFormat.from_args(args)                                        # option errors before any model loads
    from ..manifest import rank_world
    rank, world = rank_world()
    dist_info = None
    if world > 1:                         # torchrun: one process group, for the final barrier and summary only
        from ..train.ddp import setup_distributed
        dist_info = setup_distributed(args.device, timeout_s=7 * 24 * 3600)
        device = str(dist_info.device)
    else:
        device = resolve_device(args.device)
    try:
        return _run(args, model, device, rank, world)
    finally:
        if dist_info is not None:
            from ..train.ddp import cleanup
            cleanup(dist_info, barrier=False)


def _run(args, model, device: str, rank: int, world: int) -> int:
    from ..separation.registry import get_method
    bayes = {k: getattr(args, k) for k in ("beams", "chains", "priors", "counts", "select", "levels", "seed")}
    for k in ("beams", "chains", "levels"):
        if bayes[k] is not None and bayes[k] < 1:
            raise ConfigError(f"--{k} must be >= 1, got {bayes[k]}")
    method = get_method(args.method, model=model, device=device, **bayes)
    stems = parse_stems(args.stems, method.stems)
    if args.two_stems is not None:
        if args.two_stems not in method.stems:
            raise ConfigError(f"--two-stems {args.two_stems}: not a stem of this method "
                              f"({', '.join(method.stems)})")
        if args.stems:
            raise ConfigError("--two-stems and --stems: choose one")
    sep = Separation(args, method, stems)
    items = collect(args.inputs, method.needs_references, method.stems)
    root = plan(items, sep.names, args, sep.fmt)          # the same on every rank: names and paths agree
    who = f"[rank {rank}/{world}] " if world > 1 else ""
    log = (lambda *a: None) if args.quiet else (lambda *a: print(who + " ".join(map(str, a)), file=sys.stderr))
    manifest, mine = None, items
    if world > 1 or args.manifest:
        from ..manifest import Manifest, shard
        if is_file_target(args.out):
            raise ConfigError(f"-o {args.out}: --manifest and torchrun need an output folder")
        manifest = Manifest(root.root, rank)
        mine = shard(items, rank, world)
    log(f"Separating {len(mine)} track(s) with '{args.method}' on {device} into {args.out}")
    rc = _batch(mine, sep, root, args, log, manifest)
    if manifest is not None:
        rc = _finish(manifest, rc, world, log)
    if args.report and rank == 0:
        from ..report import separation_page
        mixtures = {it.track: it.mix for it in items if it.error is None}
        page = separation_page(root.root, root.root / "report", mixtures=mixtures,
                               title=f"Separation with '{args.method}'")
        log(f"report: {page}")
    return rc


def _one(it: Item, sep: Separation, root: OutputRoot, args, log, progress: bool) -> str:
    """Separate one item -> 'done' or 'skipped'; raises LatentmixError/OSError for the batch to report."""
    if it.error:
        raise InputError(it.error)
    paths = list(it.outputs.values())
    if args.skip_existing and root.exists(paths):
        log(f"skip {it.label}: its outputs exist")
        return "skipped"
    root.refuse_existing(paths)
    written = sep(it, progress, log)
    print(os.path.commonpath([str(p) for p in written]) if len(written) > 1 else written[0], flush=True)
    return "done"


def item_key(it: Item) -> str:
    """How a track is named in the manifest: its mixture file, or its folder when it has none."""
    from ..manifest import key
    return key(it.mix if it.mix is not None else next(iter(it.stem_files.values())).parent
               if it.stem_files else it.track)


def _batch(items: list[Item], sep: Separation, root: OutputRoot, args, log, manifest=None) -> int:
    """Separate every item (`-j` at a time); a failure is reported and the rest go on. With a manifest, items it
    records as done are skipped (unless --force), every outcome is recorded, and even one item never raises."""
    failed: list[tuple[Item, str]] = []
    done = skipped = 0
    progress = not args.quiet and args.jobs == 1
    finished = manifest.done() if manifest is not None and not args.force else set()

    def attempt(i_it):
        i, it = i_it
        log(f"[{i}/{len(items)}] {it.label}")
        t0 = time.perf_counter()
        if it.error is None and item_key(it) in finished:
            log(f"skip {it.label}: done (manifest)")
            return "skipped", None
        try:
            if manifest is not None and it.error is None:
                from ..outputs import remove_stale_temps
                remove_stale_temps(it.outputs.values())            # left by a killed run of this item
            status = _one(it, sep, root, args, log, progress)
            if manifest is not None and status == "done":
                manifest.record(item_key(it), list(it.outputs.values()), time.perf_counter() - t0)
            return status, None
        except (LatentmixError, OSError) as e:
            msg = str(e) if isinstance(e, LatentmixError) else f"{it.label}: {e.strerror or e}"
            if getattr(args, "debug", False):
                raise
            if len(items) == 1 and manifest is None:
                raise e if isinstance(e, LatentmixError) else OutputError(msg) from None
            return fail(it, msg, t0)
        except Exception as e:             # a bug, not a bad input: one track's crash must not end the batch
            if len(items) == 1 and manifest is None or getattr(args, "debug", False):
                raise
            return fail(it, f"{it.label}: unexpected {type(e).__name__}: {e} (a bug: please report it; --debug "
                            "shows where)", t0)

    def fail(it, msg: str, t0: float):
        print(f"error: {msg}", file=sys.stderr, flush=True)
        if manifest is not None:
            manifest.record(item_key(it), [], time.perf_counter() - t0, status="failed", error=msg)
        return "failed", msg

    work = list(enumerate(items, 1))
    if args.jobs > 1 and len(items) > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(min(args.jobs, len(items))) as pool:
            results = list(pool.map(attempt, work))
    else:
        results = [attempt(w) for w in work]
    for (_, it), (status, msg) in zip(work, results):
        if status == "failed":
            failed.append((it, msg))
        done += status == "done"
        skipped += status == "skipped"
    if failed:
        print(f"error: {len(failed)} of {len(items)} track(s) failed ({done} separated, {skipped} skipped): "
              + "; ".join(str(it.label) for it, _ in failed), file=sys.stderr)
        return 2
    if skipped:
        log(f"{done} separated, {skipped} skipped (outputs exist, or done in the manifest)")
    return 0


def _finish(manifest, rc: int, world: int, log) -> int:
    """After every rank's batch: wait for all ranks, merge the manifest once (rank 0), and exit 2 on every rank
    if any rank had a failure."""
    if world > 1:
        from ..train.ddp import all_gather_objects
        rcs = all_gather_objects(rc)                      # also the barrier: every rank has recorded everything
        rc = max(rcs)
    if manifest.rank == 0:
        path = manifest.merge()
        log(f"manifest: {path}")
    return rc
