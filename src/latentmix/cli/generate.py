"""`latentmix generate`: text prompts (or none, for an unconditional prior) -> music, one file per prompt,
with classifier-free guidance, continuation of an audio prompt (`--continue`) and optional denoising."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigError, InputError

EPILOG = """examples:
  latentmix generate "funky bass and drums at 120 bpm" -o out.wav --duration 10
  latentmix generate "a calm jazz ballad" "an energetic electronic track" -o clips/ --cfg 3 --seed 1
  latentmix generate --prompts prompts.txt -o clips/            (one prompt per line, UTF-8)
  latentmix generate "a rock song" --continue intro.wav -o more.wav --duration 8
  latentmix generate --model prior-bass --unconditional -o bass.wav   (a shipped per-stem prior)

Output: one WAV per prompt. -o ending in .wav/.flac with one prompt names the file; otherwise -o is a folder
and each file is named after its prompt. The codec's rate (22050 Hz) unless --sr. A generation record (JSON:
prompts, settings, files) goes beside them (generation.json, or <file>.json); --report renders it as HTML."""


def register(subparsers) -> None:
    p = subparsers.add_parser("generate", help="generate music from text prompts with a code prior",
                              description="Generate music with an autoregressive prior over the codec's codes.",
                              epilog=EPILOG, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("prompts", nargs="*", metavar="PROMPT", help="text prompt(s), one clip each")
    p.add_argument("--prompts", dest="prompts_file", metavar="FILE", help="a UTF-8 file with one prompt per line")
    p.add_argument("-o", "--out", default="generated", help="output file (one prompt) or folder (default: generated)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of new audio per clip (default 10)")
    p.add_argument("--continue", dest="cont", metavar="WAV", help="an audio prompt to continue (kept at the start)")
    p.add_argument("--cfg", type=float, default=3.0, help="classifier-free guidance coefficient; 1 = off (default 3)")
    p.add_argument("--top-k", type=int, default=250, help="sample among the k likeliest codes; 0 = all (default 250)")
    p.add_argument("--top-p", type=float, default=0.0, help="nucleus sampling mass; 0 = off (default)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature > 0 (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--denoise", action="store_true", help="spectral-gating clean-up of the output (noisereduce)")
    p.add_argument("--sr", type=int, default=None, help="output sample rate (default: the codec's)")
    p.add_argument("--unconditional", action="store_true", help="no prompt: sample the prior unconditionally")
    p.add_argument("--model", default=None, help="prior model file or shipped name (default: the text prior)")
    p.add_argument("--codec", default=None, help="codec model file (default: the shipped codec)")
    p.add_argument("--report", action="store_true", help="also write an HTML page (players, spectrograms)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _check(args) -> list[str] | None:
    """The prompts (None for unconditional), after every check that needs no model (errors exit 2)."""
    from ..generation import prompts_from_file
    if not args.duration > 0 or args.duration != args.duration:
        raise ConfigError(f"--duration must be > 0 seconds, got {args.duration}")
    if args.temperature <= 0:
        raise ConfigError(f"--temperature must be > 0, got {args.temperature}")
    if args.top_k < 0 or not 0 <= args.top_p < 1:
        raise ConfigError("--top-k must be >= 0 and --top-p in [0, 1)")
    if args.sr is not None and not 1000 <= args.sr <= 384000:
        raise ConfigError(f"--sr must be in 1000..384000 Hz, got {args.sr}")
    prompts = list(args.prompts) + (prompts_from_file(args.prompts_file) if args.prompts_file else [])
    if args.unconditional:
        if prompts:
            raise ConfigError("--unconditional takes no prompt")
        return None
    if not prompts:
        raise InputError("no prompt given: pass a prompt, --prompts FILE, or --unconditional")
    for p in prompts:
        if not p.strip():
            raise InputError("a prompt is empty: give some words, e.g. 'funky bass and drums at 120 bpm'")
    return prompts


def _targets(args, names: list[str]):
    """(OutputRoot, one output file per clip, the record's path): -o as a file for one clip (.wav/.flac), else a
    folder of prompt-named files; checked by latentmix.outputs (under -o, not the --continue input, nothing
    existing replaced unless --force)."""
    from ..generation import slug
    from ..outputs import OutputRoot, target, unique
    kind, out = target(args.out, len(names))
    if kind == "file" and out.suffix.lower() not in (".wav", ".flac"):
        raise ConfigError(f"-o {out}: generate writes .wav or .flac; give such a name or a folder")
    root = OutputRoot(out.parent if kind == "file" else out, [args.cont] if args.cont else [], args.force)
    paths = [root.check(out)] if kind == "file" else [root.path(f"{s}.wav") for s in unique(map(slug, names))]
    record = paths[0].with_suffix(".json") if kind == "file" else root.path("generation.json")
    root.refuse_existing(paths + [record])
    return root, paths, record


def run(args) -> int:
    prompts = _check(args)
    _root, targets, record_path = _targets(args, prompts or ["unconditional"])
    prompt_audio = None
    from ..generation import Generator
    gen = Generator.from_pretrained(args.model, args.codec)
    if args.cont:
        from ..audio import read_audio
        prompt_audio = read_audio(args.cont, gen.sample_rate)[None]
        if prompt_audio.shape[-1] < gen.codec.hop_length:
            raise InputError(f"{args.cont}: the audio prompt is shorter than one codec frame")
    wav = _sample(gen, prompts, prompt_audio, args)
    from ..audio import resample, write_audio
    from ..outputs import Transaction
    sr = args.sr or gen.sample_rate
    with Transaction(args.force) as tx:                  # every clip and the record, or nothing
        for path, clip in zip(targets, wav):
            x = clip.numpy()
            if sr != gen.sample_rate:
                x = resample(x.T, gen.sample_rate, sr).T
            write_audio(tx.temp(path), x, sr, format=path.suffix.lstrip(".").upper())
        _write_record(tx.temp(record_path), args, prompts, targets, record_path, prompt_audio, gen.sample_rate)
    for path in targets:
        print(path)
    if prompt_audio is not None:
        print(f"(each file starts with the {prompt_audio.shape[-1] / gen.sample_rate:.2f} s audio prompt)",
              file=sys.stderr)
    if args.report:
        from ..report import generation_page
        page = generation_page(record_path, record_path.parent / f"{record_path.stem}_report")
        print(f"report: {page}", file=sys.stderr)
    return 0


def _write_record(tmp: Path, args, prompts, targets, path: Path, prompt_audio, sr: int) -> None:
    """The generation record (report/generation.py's format) for `path`, written to its temporary `tmp`."""
    import json

    from ..generation import generation_record
    settings = {k: getattr(args, k) for k in ("duration", "cfg", "top_k", "top_p", "temperature", "seed",
                                               "denoise", "model")}
    rec = generation_record(prompts, settings, targets, prompts or ["unconditional"], path.parent, args.cont,
                            prompt_audio.shape[-1] / sr if prompt_audio is not None else None)
    tmp.write_text(json.dumps(rec, indent=2) + "\n", encoding="utf-8")


def _sample(gen, prompts, prompt_audio, args):
    from tqdm import tqdm
    from ..priors import CodeTransformer
    frames = int(round(args.duration * gen.codec.frame_rate))
    total = frames + (gen.codec.num_frames(prompt_audio.shape[-1]) if prompt_audio is not None else 0)
    if isinstance(gen.prior, CodeTransformer):
        total = gen.prior.pattern.steps(total)             # the RQ-Transformer steps once per frame
    bar = tqdm(total=total, unit="step", desc="generating", disable=True if args.quiet else None, leave=False)
    try:
        return gen.generate(prompts, seconds=args.duration, prompt_audio=prompt_audio, cfg=args.cfg,
                            top_k=args.top_k, top_p=args.top_p, temperature=args.temperature, seed=args.seed,
                            denoise_output=args.denoise, progress=bar.update)
    finally:
        bar.close()
