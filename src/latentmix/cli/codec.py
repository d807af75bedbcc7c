"""`latentmix codec encode|decode|roundtrip|info`: audio files and folders <-> .lmxc code files.

Long files go through the codec in chunks with receptive-field margins (bounded activation memory; the codes
equal whole-file codes). Headers, header checks and the bitrate come from the codec contract (codec/base.py).
Progress bars on stderr (--quiet silences them), results on stdout.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import InputError, ModelFileError
from ..validation import arg


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


def _outputs(inputs, out: str, suffix: str, exts) -> list[tuple[Path, Path]]:
    """Map inputs (files, folders recursed) to output files under `out` (a file when one input file)."""
    out = Path(out)
    pairs = []
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in exts)
            if not files:
                raise InputError(f"{p}: folder contains no {'/'.join(exts)} files")
            pairs += [(q, out / q.relative_to(p).with_suffix(suffix)) for q in files]
        else:
            pairs.append((p, out / p.with_suffix(suffix).name))
    if len(inputs) == 1 and Path(inputs[0]).is_file() and out.suffix.lower() == suffix:
        pairs = [(pairs[0][0], out)]
    return pairs


def _chunk_frames(model, seconds: float) -> int:
    if seconds <= 0:
        raise InputError(f"--chunk-seconds must be positive, got {seconds}")
    return max(1, math.ceil(seconds * model.sample_rate / model.hop_length))


def _encode_file(model, path, args, bar):
    """-> (audio (C, T), codes (1, n, F), chunk frames)."""
    from ..audio import read_audio
    wav = read_audio(path, sr=model.sample_rate, mono=model.channels == 1, fix_nonfinite=args.fix_nonfinite)
    if wav.shape[0] != model.channels:
        raise InputError(f"{path}: has {wav.shape[0]} channels, the codec expects {model.channels}")
    try:
        n = model.levels(args.num_codebooks)
    except ValueError as e:
        raise InputError(f"--num-codebooks: {e}") from None
    cf = _chunk_frames(model, args.chunk_seconds)
    with torch.inference_mode():
        codes = model.encode_chunked(wav[None], n, cf, progress=bar.update)
    return wav, codes, cf


def cmd_encode(args) -> int:
    from ..audio import AUDIO_EXTENSIONS
    from ..codec.codefile import write_codes
    model, model_id = _load_model(args)
    for src, dst in tqdm(_outputs(args.inputs, args.out, ".lmxc", AUDIO_EXTENSIONS), disable=args.quiet,
                         desc="encode", unit="file"):
        with tqdm(disable=args.quiet, desc=src.name, unit="frame", leave=False) as bar:
            wav, codes, cf = _encode_file(model, src, args, bar)
        write_codes(dst, codes, model.code_header(wav.shape[-1], cf, model_id, source=src.name))
        if not args.quiet:
            tqdm.write(f"{src} -> {dst} ({codes.shape[1]} x {codes.shape[2]} codes, "
                       f"{model.bitrate(codes.shape[1]) / 1000:.2f} kbps)")
    return 0


def cmd_decode(args) -> int:
    from ..audio import write_audio
    from ..codec.codefile import read_codes
    model, model_id = _load_model(args)
    for src, dst in tqdm(_outputs(args.inputs, args.out, ".wav", (".lmxc",)), disable=args.quiet,
                         desc="decode", unit="file"):
        codes, h = read_codes(src)
        if codes.shape[0] != 1:
            raise ModelFileError(f"{src}: holds {codes.shape[0]} signals; decode writes one audio file per code file")
        for warning in model.check_code_header(h, codes, model_id, source=str(src)):
            print(f"warning: {warning}", file=sys.stderr)     # a warning, not progress: --quiet keeps it
        cf = _chunk_frames(model, args.chunk_seconds)
        with tqdm(disable=args.quiet, desc=src.name, unit="frame", leave=False) as bar, torch.inference_mode():
            wav = model.decode_chunked(codes, cf, progress=bar.update)[0]
        write_audio(dst, wav[..., :int(h.get("original_length", wav.shape[-1]))], model.sample_rate)
    return 0


def cmd_roundtrip(args) -> int:
    from ..audio import AUDIO_EXTENSIONS, write_audio
    from ..metrics.codec import mel_distance
    from ..metrics.sisdr import si_sdr
    model, _ = _load_model(args)
    for src, dst in tqdm(_outputs(args.inputs, args.out, ".wav", AUDIO_EXTENSIONS), disable=args.quiet,
                         desc="roundtrip", unit="file"):
        with tqdm(disable=args.quiet, desc=src.name, unit="frame", leave=False) as bar:
            wav, codes, cf = _encode_file(model, src, args, bar)
        with torch.inference_mode():
            rec = model.decode_chunked(codes, cf)[0][..., :wav.shape[-1]]
            sdr, mel = float(si_sdr(rec, wav).mean()), float(mel_distance(rec, wav, sr=model.sample_rate))
        write_audio(dst, rec, model.sample_rate)
        kbps = model.bitrate(codes.shape[1]) / 1000
        print(f"{src}\tsi_sdr={sdr:.2f} dB\tmel_distance={mel:.3f}\tbitrate={kbps:.2f} kbps\t-> {dst}")
    return 0


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


def register(subparsers) -> None:
    p = subparsers.add_parser("codec", help="encode audio to codes, decode codes to audio, round-trip, inspect")
    sub = p.add_subparsers(dest="codec_command", metavar="ACTION")
    sub.required = True

    def common(q, what):
        q.add_argument("inputs", nargs="+", metavar="IN", help=f"{what} files or folders (recursed)")
        q.add_argument("-o", "--out", required=True, help="output folder (or file, for one input)")
        q.add_argument("--model", default=None, help="codec model file (default: the shipped codec)")
        q.add_argument("--chunk-seconds", type=arg("seconds"), default=30.0,
                       help="process long files in chunks of this many seconds (default 30)")
        q.add_argument("--quiet", action="store_true", help="no progress bars")

    e = sub.add_parser("encode", help="audio -> .lmxc code files")
    common(e, "audio")
    e.add_argument("--num-codebooks", type=arg("count"), default=None,
                   help="codebooks to keep (bitrate); default all")
    e.add_argument("--fix-nonfinite", action="store_true",
                   help="replace NaN/inf input samples with 0 (default: refuse)")
    e.set_defaults(func=cmd_encode)
    d = sub.add_parser("decode", help=".lmxc code files -> .wav")
    common(d, ".lmxc")
    d.set_defaults(func=cmd_decode)
    r = sub.add_parser("roundtrip", help="encode+decode, print SI-SDR, mel distance and bitrate")
    common(r, "audio")
    r.add_argument("--num-codebooks", type=arg("count"), default=None, help="codebooks to use; default all")
    r.add_argument("--fix-nonfinite", action="store_true",
                   help="replace NaN/inf input samples with 0 (default: refuse)")
    r.set_defaults(func=cmd_roundtrip)
    i = sub.add_parser("info", help="print a code file's header")
    i.add_argument("file")
    i.set_defaults(func=cmd_info)
