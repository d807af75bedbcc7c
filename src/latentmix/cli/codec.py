"""`latentmix codec encode|decode|roundtrip|info`: audio files and folders <-> .lmxc code files, like encodec's CLI.

`latentmix codec IN... -o OUT` with no action picks one by extension (.lmxc inputs: decode; an audio -o: a round
trip; else encode). Each channel is encoded as its own signal at the codec's rate, and the code file records the
source's rate, channels and length, so decode gives them back. Long files go through the codec in chunks with
receptive-field margins (bounded memory; the codes equal whole-file codes). Headers, header checks and the bitrate
come from the codec contract (codec/base.py); output paths, `--force` and all-or-nothing writes from
latentmix.outputs. Progress bars on a terminal only (stderr); results on stdout. torch is imported when a command
runs, not to build the parser.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..errors import ConfigError, InputError, LatentmixError, ModelFileError, OutputError
from ..formats import AudioFormat, add_format_arguments
from ..outputs import AUDIO_EXTENSIONS, CODE_EXTENSIONS, OutputRoot, Transaction, target
from ..validation import arg

ACTIONS = ("encode", "decode", "roundtrip", "info")
_FLAGS = {"--quiet", "--force", "--skip-existing", "--json", "--mono", "--fix-nonfinite", "--flac", "--mp3",
          "--int24", "--float32", "-h", "--help"}                                       # the options that take no value


def infer_action(argv: list[str]) -> list[str]:
    """`codec IN... -o OUT` without an action -> with one: decode for .lmxc inputs, roundtrip for an audio -o,
    else encode (as encodec's `encodec in out`). Other command lines are returned unchanged."""
    try:
        i = next(k for k, a in enumerate(argv) if not a.startswith("-"))
    except StopIteration:
        return argv
    if argv[i] != "codec":
        return argv
    rest = argv[i + 1:]
    ins, out, k = [], "", 0
    while k < len(rest):                                        # the positionals, wherever the options are
        a = rest[k]
        if a in ("-o", "--out") and k + 1 < len(rest):
            out = rest[k + 1]
        if a.startswith("-") and a not in _FLAGS and "=" not in a:
            k += 1                                              # the option's value
        elif not a.startswith("-"):
            ins.append(a)
        k += 1
    if not ins or ins[0] in ACTIONS or any(a in ("-h", "--help") for a in rest):
        return argv
    if ins and all(Path(a).suffix.lower() in CODE_EXTENSIONS for a in ins):
        action = "decode"
    elif Path(out).suffix.lower() in AUDIO_EXTENSIONS:
        action = "roundtrip"
    else:
        action = "encode"
    return argv[:i + 1] + [action] + rest


def _quiet_bar(args):
    """tqdm's `disable`: True when --quiet, else None (bars on a terminal only, never into a pipe)."""
    return True if args.quiet else None


def _load_model(args):
    from ..codec.base import model_file_id
    from ..codec.model import Codec
    from ..pretrained.registry import resolve_model
    path = resolve_model(args.model, "codec")
    model = Codec.load(path)
    model_id = model_file_id(path)
    if model.is_continuous:
        raise ModelFileError(f"{path}: a VAE codec has no discrete codes")
    return model, model_id


def plan(args, suffix: str, exts) -> tuple[list[tuple[Path, Path | None, str | None]], OutputRoot]:
    """(input, output or None, error or None) for every input file (folders recursed, relative paths kept under
    -o; colliding names made distinct), and the checked output root (see outputs.target for the -o rule)."""
    found: list[tuple[Path, tuple, str | None]] = []
    for raw in args.inputs:
        p = Path(raw)
        if not p.exists():
            found.append((p, (), f"{p}: no such file or folder"))
        elif p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in exts)
            if not files:
                found.append((p, (), f"{p}: folder contains no {'/'.join(exts)} files"))
            found += [(q, q.relative_to(p).with_suffix(suffix).parts, None) for q in files]
        else:
            found.append((p, (p.with_suffix(suffix).name,), None))
    kind, out = target(args.out, len(found))
    root = OutputRoot(out.parent if kind == "file" else out, [f for f, _, e in found if e is None],
                      args.force, getattr(args, "skip_existing", False))
    if kind == "file":
        if out.suffix.lower() != suffix and not (suffix != ".lmxc" and out.suffix.lower() in AUDIO_EXTENSIONS):
            want = "a .lmxc code file" if suffix == ".lmxc" else "an audio file"
            raise OutputError(f"-o {out}: {args.codec_command} writes {want}; give such a name or a folder")
        return [(found[0][0], root.check(out), found[0][2])], root
    pairs, seen = [], set()
    for src, parts, err in found:
        if err:
            pairs.append((src, None, err))
            continue
        dst = base = root.path(*parts)
        k = 2
        while dst.resolve() in seen:
            dst, k = base.with_name(f"{base.stem}_{k}{base.suffix}"), k + 1
        seen.add(dst.resolve())
        pairs.append((src, dst, None))
    return pairs, root


def _batch(args, pairs, root, work) -> int:
    """Run work(src, dst) for every pair; a bad file is reported and the rest go on (exit 2 at the end)."""
    failed, done, skipped = [], 0, 0
    for src, dst, err in pairs:
        try:
            if err:
                raise InputError(err)
            if getattr(args, "skip_existing", False) and root.exists([dst]):
                skipped += 1
                continue
            root.refuse_existing([dst])
            work(src, dst)
            done += 1
        except (LatentmixError, OSError) as e:
            msg = str(e) if isinstance(e, LatentmixError) else f"{src}: {e.strerror or e}"
            if getattr(args, "debug", False):
                raise
            if len(pairs) == 1:
                raise e if isinstance(e, LatentmixError) else OutputError(msg) from None
            print(f"error: {msg}", file=sys.stderr, flush=True)
            failed.append(str(src))
        except Exception as e:             # a bug, not a bad input: one file's crash must not end the batch
            if len(pairs) == 1 or getattr(args, "debug", False):
                raise
            print(f"error: {src}: unexpected {type(e).__name__}: {e} (a bug: please report it; --debug shows "
                  "where)", file=sys.stderr, flush=True)
            failed.append(str(src))
    if failed:
        print(f"error: {len(failed)} of {len(pairs)} file(s) failed ({done} done, {skipped} skipped): "
              + "; ".join(failed), file=sys.stderr)
        return 2
    return 0


def _chunk_frames(model, seconds: float) -> int:
    if not seconds > 0:
        raise ConfigError(f"--chunk-seconds must be positive, got {seconds}")
    return max(1, math.ceil(seconds * model.sample_rate / model.hop_length))


def levels_for(model, args) -> int:
    """Levels from --num-codebooks or -b/--bandwidth (the most levels whose bitrate fits; per channel)."""
    bw = getattr(args, "bandwidth", None)
    if bw is not None and args.num_codebooks is not None:
        raise ConfigError("-b/--bandwidth and --num-codebooks: choose one")
    if bw is not None:
        rates = [model.bitrate(n) / 1000 for n in range(1, model.num_codebooks + 1)]
        fits = [n for n, r in enumerate(rates, 1) if r <= bw + 1e-9]
        if not fits:
            raise ConfigError(f"-b {bw:g}: below the lowest bitrate of this codec ({rates[0]:.2f} kbps; "
                              f"it offers {', '.join(f'{r:.2f}' for r in rates)} kbps)")
        return fits[-1]
    try:
        return model.levels(args.num_codebooks)
    except ValueError as e:
        raise ConfigError(f"--num-codebooks: {e}") from None


def _encode_file(model, path, args):
    """-> (signals (C, 1, Tm) at the codec's rate, codes (C, n, F), chunk frames, source rate, source (C, T))."""
    import torch
    from tqdm import tqdm

    from ..audio import info, read_audio
    from ..audio import layout, to_rate
    src = read_audio(path, sr=None, mono=False, fix_nonfinite=getattr(args, "fix_nonfinite", False))
    sr_in = info(path)[1]
    src, _ = layout(src, getattr(args, "mono", False))
    Tm = int(round(src.shape[-1] * model.sample_rate / sr_in))
    wav = torch.from_numpy(to_rate(src.numpy(), sr_in, model.sample_rate, Tm))
    if model.channels == 1:
        wav = wav[:, None]                                         # each channel its own signal
    elif wav.shape[0] == model.channels:
        wav = wav[None]
    else:
        raise InputError(f"{path}: has {wav.shape[0]} channels, the codec expects {model.channels}")
    n = levels_for(model, args)
    cf = _chunk_frames(model, args.chunk_seconds)
    with tqdm(disable=_quiet_bar(args), desc=Path(path).name, unit="frame", leave=False, file=sys.stderr) as bar, \
            torch.inference_mode():
        codes = model.encode_chunked(wav, n, cf, progress=bar.update)
    return wav, codes, cf, sr_in, src


def _to_output(model, rec, header_or_src: dict, args):
    """Decoded signals (B, C, Tm) at the codec's rate -> (channels, T) at the source's (or --sr) rate."""
    from ..audio import to_rate
    x = rec.reshape(-1, rec.shape[-1]) if model.channels == 1 else rec[0]
    if getattr(args, "mono", False) and x.shape[0] > 1:
        x = x.mean(0, keepdim=True)
    sr_src = int(header_or_src.get("source_sample_rate") or model.sample_rate)
    sr = int(getattr(args, "sr", None) or sr_src)
    length = header_or_src.get("source_length")
    T = int(round(length * sr / sr_src)) if length else int(round(x.shape[-1] * sr / model.sample_rate))
    return to_rate(x.cpu().numpy(), model.sample_rate, sr, T), sr


def _write_audio(dst, wav, sr, args) -> None:
    from ..formats import clip
    fmt = AudioFormat.from_args(args).for_path(dst)
    fmt.check_rate(sr)
    x = clip({"x": wav}, args.clip_mode)["x"]
    with Transaction(args.force) as tx:
        fmt.write(tx.temp(dst), x, sr)


def cmd_encode(args) -> int:
    from ..codec.codefile import write_codes
    model, model_id = _load_model(args)
    levels_for(model, args)
    pairs, root = plan(args, ".lmxc", AUDIO_EXTENSIONS)

    def work(src, dst):
        wav, codes, cf, sr_in, source = _encode_file(model, src, args)
        header = model.code_header(wav.shape[-1], cf, model_id, source=src.name, source_sample_rate=sr_in,
                                   source_channels=int(source.shape[0]), source_length=int(source.shape[-1]))
        with Transaction(args.force) as tx:
            write_codes(tx.temp(dst), codes, header)
        if not args.quiet:
            print(f"{src} -> {dst} ({codes.shape[0]} x {codes.shape[1]} x {codes.shape[2]} codes, "
                  f"{model.bitrate(codes.shape[1]) / 1000:.2f} kbps per channel)", flush=True)
    return _batch(args, pairs, root, work)


def cmd_decode(args) -> int:
    import torch
    from tqdm import tqdm

    from ..codec.codefile import read_codes
    AudioFormat.from_args(args)
    model, model_id = _load_model(args)
    ext = "." + AudioFormat.from_args(args).ext
    pairs, root = plan(args, ext, CODE_EXTENSIONS)

    def work(src, dst):
        codes, h = read_codes(src)
        channels = int(h.get("source_channels") or 1)
        if model.channels == 1 and codes.shape[0] != channels:
            raise ModelFileError(f"{src}: holds {codes.shape[0]} signals for {channels} channel(s)")
        for warning in model.check_code_header(h, codes, model_id, source=str(src)):
            print(f"warning: {warning}", file=sys.stderr)     # a warning, not progress: --quiet keeps it
        cf = _chunk_frames(model, args.chunk_seconds)
        with tqdm(disable=_quiet_bar(args), desc=src.name, unit="frame", leave=False, file=sys.stderr) as bar, \
                torch.inference_mode():
            rec = model.decode_chunked(codes, cf, progress=bar.update)
        rec = rec[..., :int(h.get("original_length", rec.shape[-1]))]
        wav, sr = _to_output(model, rec, h, args)
        _write_audio(dst, wav, sr, args)
        if not args.quiet:
            print(f"{src} -> {dst} ({wav.shape[0]} channel(s), {sr} Hz)", flush=True)
    return _batch(args, pairs, root, work)


def cmd_roundtrip(args) -> int:
    import torch

    from ..metrics.codec import mel_distance
    from ..metrics.sisdr import si_sdr
    AudioFormat.from_args(args)
    model, _ = _load_model(args)
    levels_for(model, args)
    ext = "." + AudioFormat.from_args(args).ext
    pairs, root = plan(args, ext, AUDIO_EXTENSIONS)

    def work(src, dst):
        wav, codes, cf, sr_in, source = _encode_file(model, src, args)
        with torch.inference_mode():
            rec = model.decode_chunked(codes, cf)[..., :wav.shape[-1]]
            sdr = float(si_sdr(rec, wav).mean())
            mel = float(mel_distance(rec, wav, sr=model.sample_rate))
        out, sr = _to_output(model, rec, {"source_sample_rate": sr_in, "source_length": source.shape[-1]}, args)
        _write_audio(dst, out, sr, args)
        kbps = model.bitrate(codes.shape[1]) / 1000
        if args.json:
            print(json.dumps({"input": str(src), "output": str(dst), "si_sdr_db": round(sdr, 3),
                              "mel_distance": round(mel, 4), "bitrate_kbps": round(kbps, 3),
                              "num_codebooks": int(codes.shape[1]), "channels": int(source.shape[0]),
                              "sample_rate": int(sr)}), flush=True)
        else:
            print(f"{src}\tsi_sdr={sdr:.2f} dB\tmel_distance={mel:.3f}\tbitrate={kbps:.2f} kbps\t-> {dst}",
                  flush=True)
    return _batch(args, pairs, root, work)


def cmd_info(args) -> int:
    """Print the header plus duration_seconds and bitrate_bps (the contract's formula on the header's numbers;
    null where the header lacks sample_rate or hop_length)."""
    from ..codec.base import bits_per_second
    from ..codec.codefile import read_codes
    codes, h = read_codes(args.file)      # all of it: the CRC and code range are checked, not just the header
    sr, hop = h.get("sample_rate"), h.get("hop_length")
    h = dict(h, duration_seconds=round(h["original_length"] / sr, 3) if sr and "original_length" in h else None,
             bitrate_bps=round(bits_per_second(sr, hop, codes.shape[1], h["codebook_size"]), 1)
             if sr and hop else None)
    print(json.dumps(h, indent=2, sort_keys=True))
    return 0


EXAMPLES = {
    "encode": """examples:
  latentmix codec encode song.wav -o codes/              # codes/song.lmxc, every level
  latentmix codec encode song.wav -o song.lmxc -b 3      # the most levels within 3 kbps (per channel)
  latentmix codec encode music/ -o codes/ --num-codebooks 6 --skip-existing
  latentmix codec song.wav -o song.lmxc                  # the same, action taken from the extensions""",
    "decode": """examples:
  latentmix codec decode codes/song.lmxc -o decoded/     # decoded/song.wav at the source's rate and channels
  latentmix codec decode codes/ -o decoded/ --flac
  latentmix codec song.lmxc -o song.wav                  # the same, action taken from the extension""",
    "roundtrip": """examples:
  latentmix codec roundtrip song.wav -o rt/              # prints SI-SDR, mel distance and bitrate
  latentmix codec roundtrip music/ -o rt/ -b 6 --json    # one JSON object per file
  latentmix codec song.wav -o song_rt.wav                # the same, action taken from the extensions""",
    "info": """example:
  latentmix codec info codes/song.lmxc""",
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "codec", help="encode audio to codes, decode codes to audio, round-trip, inspect",
        description="The neural codec: audio <-> .lmxc code files. `latentmix codec IN -o OUT` without an action "
                    "chooses one by extension (encode, decode, or a round trip to audio).",
        epilog="examples:\n  latentmix codec encode song.wav -o codes/ -b 6\n  latentmix codec song.lmxc -o song.wav"
               "\n  latentmix codec roundtrip song.wav -o rt/ --json\n  latentmix codec info codes/song.lmxc",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="codec_command", metavar="ACTION")
    sub.required = True

    def parser(name, help, description):
        return sub.add_parser(name, help=help, description=description, epilog=EXAMPLES[name],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    def common(q, what, audio_out: bool):
        q.add_argument("inputs", nargs="+", metavar="IN", help=f"{what} files or folders (recursed)")
        q.add_argument("-o", "--out", required=True,
                       help="output folder, or a file for one input (a path ending in an audio or .lmxc extension "
                            "is a file, anything else a folder)")
        q.add_argument("--model", default=None, help="codec model file or shipped name (default: the shipped codec)")
        q.add_argument("--chunk-seconds", type=arg("seconds"), default=30.0,
                       help="process long files in chunks of this many seconds (default 30)")
        q.add_argument("--force", action="store_true", help="overwrite existing outputs")
        q.add_argument("--skip-existing", action="store_true", help="skip inputs whose output exists")
        q.add_argument("--quiet", action="store_true", help="no progress bars or notes")
        if audio_out:
            q.add_argument("--sr", type=int, default=None, help="output sample rate (default: the source's)")
            q.add_argument("--mono", action="store_true", help="write mono (default: the source's channels)")
            add_format_arguments(q)

    def levels(q):
        q.add_argument("-b", "--bandwidth", type=float, default=None, metavar="KBPS",
                       help="target bitrate per channel in kbps: the most levels that fit (like encodec's -b)")
        q.add_argument("--num-codebooks", type=arg("count"), default=None, help="levels to keep (default: all)")
        q.add_argument("--fix-nonfinite", action="store_true",
                       help="replace NaN/inf input samples with 0 (default: refuse)")

    e = parser("encode", "audio -> .lmxc code files",
               "Encode audio files (or folders) into .lmxc code files: each channel at the codec's rate, with the "
               "source's rate, channels and length in the header.")
    common(e, "audio", audio_out=False)
    levels(e)
    e.add_argument("--mono", action="store_true", help="downmix to mono before encoding (half the codes of stereo)")
    e.set_defaults(func=cmd_encode)
    d = parser("decode", ".lmxc code files -> audio",
               "Decode .lmxc code files to audio at the source's sample rate and channels (--sr/--mono to choose).")
    common(d, ".lmxc", audio_out=True)
    d.set_defaults(func=cmd_decode)
    r = parser("roundtrip", "encode+decode, print SI-SDR, mel distance and bitrate",
               "Encode and decode audio, write the result and print its SI-SDR, mel distance and bitrate (scored at "
               "the codec's rate on every channel).")
    common(r, "audio", audio_out=True)
    levels(r)
    r.add_argument("--json", action="store_true", help="print one JSON object per file instead of a text line")
    r.set_defaults(func=cmd_roundtrip)
    i = parser("info", "print a code file's header",
               "Print a code file's JSON header with its duration and bitrate (the whole file is checked).")
    i.add_argument("file")
    i.set_defaults(func=cmd_info)
