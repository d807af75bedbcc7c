"""Separation benchmark: msdm-protocol scores and speed of separators against the IRM and codec ceilings.

Run `python benchmarks/separation.py --data data/slakhlike [--split test] [--model NAME=PATH ...] [--shipped]
[--codec PATH|default] [--max-tracks N] [--threads 2] [--json OUT.json] [--quiet] [--write]`;
--write replaces the `separation` section of benchmarks/RESULTS.md.

Rows, in this order (each optional except the oracle):
  NAME        every `--model NAME=PATH` separator file, run through the 'supervised' method exactly as
              `latentmix separate` runs it: separation.registry.separate_long with the model's own
              segment_seconds, overlap 0.25, 4 segments per call, under inference_mode.
  shipped     the shipped default separator (`--shipped`), same path.
  IRM         the ideal ratio mask from the true stems (method 'oracle-irm', power 2, n_fft 2048, hop 512):
              the ceiling of a mask-based separator. Always present; `% of IRM` divides by its All.
  codec       (`--codec`) each true stem encoded and decoded by the codec at full bitrate, scored as if it were
              an estimate: the best a separator that outputs codec codes could do.
Scores: msdm protocol v1 over every track of the split (mixture = sum of the four stems): SI-SNRi dB per stem
(MSDM's si_snr: SI-SDR without zero-mean), All = mean of the stem means, windows = kept 4 s windows.
Speed: seconds of compute per second of audio, timed around the separation calls only (the codec row: encode +
decode of the four stems), with torch.set_num_threads(--threads); each row first runs once on 1 s of audio,
untimed (lazy initialisation). Parameters: every parameter of the loaded model (a latent separator's count
includes its frozen codec). The targets line checks the shipped default: All >= 8 dB, >= 50 % of IRM and
>= 20x real time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine, today, write_section  # noqa: E402

from latentmix import SAMPLE_RATE, __version__  # noqa: E402
from latentmix.errors import ConfigError, LatentmixError, ModelFileError  # noqa: E402
from latentmix.metrics.protocols import get_protocol  # noqa: E402
from latentmix.separation.registry import get_method, resolve_device, separate_long  # noqa: E402

OVERLAP = 0.25
BATCH_SEGMENTS = 4
WARMUP_SECONDS = 1.0
TARGETS = {"all_db": 8.0, "pct_irm": 50.0, "xrt": 20.0}
IRM_ROW, SHIPPED_ROW, CODEC_ROW = "IRM (oracle)", "shipped default", "codec ceiling"


# ------------------------------------------------------------------ rows
class MethodRow:
    """A registered separation method run like `latentmix separate`: run(mix (1, 1, T), refs (1, S, T)) -> (S, T)."""

    def __init__(self, name: str, method, kind: str, path=None):
        self.name, self.method, self.kind, self.path = name, method, kind, path
        model = getattr(method, "model", None)
        self.params = sum(p.numel() for p in model.parameters()) if model is not None else None
        seg = getattr(method, "segment_seconds", None)
        cfg = getattr(model, "config", {}) if model is not None else {}
        if kind == "oracle":
            self.detail = f"method `{method.name}` (n_fft {method.n_fft}, hop {method.hop}, power {method.power:g})"
        else:
            self.detail = (f"`{path}` (arch {cfg.get('arch', '?')}, segment {seg:g} s, overlap {OVERLAP:g}, "
                           f"{BATCH_SEGMENTS} segments per call)")

    def run(self, mix: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
        return separate_long(self.method, mix, refs, None, OVERLAP, SAMPLE_RATE, BATCH_SEGMENTS)[0]


class CodecRow:
    """Each true stem through the codec at full bitrate: run(mix, refs (1, S, T)) -> (S, T)."""

    def __init__(self, path, device):
        from latentmix.codec.model import Codec
        from latentmix.pretrained.registry import resolve_model
        self.path = resolve_model(None if path == "default" else path, "codec")
        self.codec = Codec.load(self.path, device=device)
        if self.codec.sample_rate != SAMPLE_RATE or self.codec.channels != 1:
            raise ConfigError(f"{self.path}: the codec ceiling needs a mono {SAMPLE_RATE} Hz codec, got "
                              f"{self.codec.channels} channel(s) at {self.codec.sample_rate} Hz")
        c = self.codec
        self.name, self.kind = CODEC_ROW, "codec"
        self.params = sum(p.numel() for p in c.parameters())
        rate = "continuous latents (VAE)" if c.is_continuous else \
            f"{c.num_codebooks} codebooks x {c.codebook_size}, {c.bitrate() / 1000:.2f} kbps"
        self.detail = f"`{self.path}` ({rate}, per stem encode + decode)"

    def run(self, mix: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
        x = refs[0][:, None]                                                   # (S, 1, T)
        T = x.shape[-1]
        with torch.inference_mode():
            if self.codec.is_continuous:
                y = self.codec.decode_latents(self.codec.encode_latents(x))
            else:
                y = self.codec.decode_chunked(self.codec.encode_chunked(x))
        return y[:, 0, :T]


def parse_models(specs) -> list[tuple[str, str]]:
    out, seen = [], {IRM_ROW, SHIPPED_ROW, CODEC_ROW}
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ConfigError(f"--model {spec!r}: expected NAME=PATH")
        if name in seen:
            raise ConfigError(f"--model {spec!r}: the row name '{name}' is already used")
        seen.add(name)
        out.append((name, path))
    return out


def build_rows(args, device: str) -> list:
    rows = []
    for name, path in parse_models(args.model):
        if not Path(path).is_file():
            raise ModelFileError(f"{path}: no such separator file (--model {name}={path})")
        rows.append(MethodRow(name, get_method("supervised", model=path, device=device), "model", path))
    if args.shipped:
        m = get_method("supervised", model="default", device=device)
        rows.append(MethodRow(SHIPPED_ROW, m, "shipped", m.path))
    rows.append(MethodRow(IRM_ROW, get_method("oracle-irm", device=device), "oracle"))
    if args.codec:
        rows.append(CodecRow(args.codec, device))
    stems = get_protocol("msdm").stems
    for r in rows:
        if r.kind != "codec" and tuple(r.method.stems) != tuple(stems):
            raise ConfigError(f"row '{r.name}' gives stems {', '.join(r.method.stems)}; the msdm protocol needs "
                              f"{', '.join(stems)}")
    return rows


# ------------------------------------------------------------------ measurement
def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def evaluate(rows, tracks, device: str, quiet: bool = False) -> dict:
    """Separate and score every track with every row -> {name: {stems, All, windows, seconds, per_track}}."""
    from latentmix.data.datasets import load_track
    protocol = get_protocol("msdm")
    records = {r.name: [] for r in rows}
    per_track = {r.name: {} for r in rows}
    compute = {r.name: 0.0 for r in rows}
    audio_s, warmed = 0.0, False
    for track in tqdm(tracks, desc="separation", unit="track", disable=quiet, file=sys.stderr,
                      dynamic_ncols=True):
        refs = load_track(track, SAMPLE_RATE, stems=protocol.stems)           # (4, T)
        mix = protocol.make_mixture(refs).float()                              # (T,)
        mix_d, refs_d = mix[None, None].to(device), refs[None].to(device)
        if not warmed:                                                         # untimed first call per row
            n = min(refs.shape[-1], int(WARMUP_SECONDS * SAMPLE_RATE))
            for r in rows:
                r.run(mix_d[..., :n], refs_d[..., :n])
            warmed = True
        for r in rows:
            _sync(device)
            t0 = time.perf_counter()
            est = r.run(mix_d, refs_d)
            _sync(device)
            compute[r.name] += time.perf_counter() - t0
            recs = protocol.evaluate_track(refs, est.float().cpu(), mix)
            per_track[r.name][track.name] = protocol.aggregate(recs)
            records[r.name].extend(recs)
        audio_s += refs.shape[-1] / SAMPLE_RATE
    out = {}
    for r in rows:
        row = protocol.aggregate(records[r.name])
        row.update(kind=r.kind, params=r.params, detail=r.detail, compute_s=compute[r.name],
                   sec_per_sec=compute[r.name] / max(audio_s, 1e-9),
                   xrt=audio_s / max(compute[r.name], 1e-9), per_track=per_track[r.name])
        out[r.name] = row
    irm_all = out[IRM_ROW]["All"]
    for row in out.values():
        row["pct_irm"] = 100.0 * row["All"] / irm_all if irm_all and irm_all > 0 else float("nan")
    return {"rows": out, "audio_seconds": audio_s, "tracks": len(tracks)}


def check_targets(rows: dict) -> dict:
    """PASS/MISS of each target for the shipped default row ({} when it was not measured)."""
    s = rows.get(SHIPPED_ROW)
    if s is None:
        return {}
    got = {"all_db": s["All"], "pct_irm": s["pct_irm"], "xrt": s["xrt"]}
    return {k: {"value": got[k], "target": v, "pass": bool(got[k] >= v)} for k, v in TARGETS.items()}


# ------------------------------------------------------------------ output
def _params(n) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} k"


def markdown(res: dict, meta: dict) -> str:
    stems = get_protocol("msdm").stems
    rows = res["rows"]
    lines = ["## Separation (msdm protocol)", "",
             f"Machine: {meta['machine']}; date {meta['date']}; command `{meta['command']}`.", "",
             f"Split `{meta['split']}` of `{meta['data']}`: {res['tracks']} track(s), {res['audio_seconds']:.0f} s "
             f"of audio, mixture = sum of the 4 stems; msdm v1 SI-SNRi dB (MSDM's si_snr, no zero-mean; All = "
             f"mean of the stem means; windows = kept 4 s windows). Speed: {meta['threads']} torch thread(s) on "
             f"{meta['device']}, separation calls only, after one untimed {WARMUP_SECONDS:g} s call per row.", "",
             "| method | " + " | ".join(stems) + " | All | % of IRM | windows | params | s per audio s | x real time |",
             "|---|" + "---:|" * (len(stems) + 6)]
    for name, r in rows.items():
        cells = [f"{r[s]:.2f}" for s in stems] + [f"**{r['All']:.2f}**", f"{r['pct_irm']:.0f} %", str(r["windows"]),
                                                  _params(r["params"]), f"{r['sec_per_sec']:.4f}", f"{r['xrt']:.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [""] + [f"- {name}: {r['detail']}" for name, r in rows.items()]
    t = res["targets"]
    if t:
        def item(k, fmt, what):
            v = t[k]
            return f"{what} {fmt.format(v['value'])} (target >= {fmt.format(v['target'])}): " \
                   f"{'PASS' if v['pass'] else 'MISS'}"
        line = "; ".join([item("all_db", "{:.2f} dB", "All SI-SNRi"), item("pct_irm", "{:.0f} %", "of IRM"),
                          item("xrt", "{:.1f}x", "real time")])
    else:
        line = "not measured (run with --shipped)"
    lines += ["", f"Targets (shipped default): {line}."]
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="MSDM-layout root holding the split (e.g. data/slakhlike)")
    ap.add_argument("--split", default="test", help="split to evaluate (default test)")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                    help="a separator file to benchmark as row NAME (repeatable)")
    ap.add_argument("--shipped", action="store_true", help="add the shipped default separator (and check targets)")
    ap.add_argument("--codec", default=None, metavar="PATH|default", help="add the codec-reconstruction ceiling")
    ap.add_argument("--max-tracks", type=int, default=None, help="only the first N tracks of the split")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the timed calls (default 2)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    ap.add_argument("--json", default=None, metavar="OUT.json", help="also write the numbers as JSON")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--write", action="store_true", help="replace the separation section of benchmarks/RESULTS.md")
    return ap.parse_args(argv)


def run(argv=None) -> tuple[dict, str]:
    """Parse argv, benchmark every row -> (results dict as written to --json, markdown table)."""
    from latentmix.data.datasets import list_tracks
    args = parse_args(argv)
    if args.threads < 1:
        raise ConfigError(f"--threads {args.threads}: must be at least 1")
    if args.max_tracks is not None and args.max_tracks < 1:
        raise ConfigError(f"--max-tracks {args.max_tracks}: must be at least 1")
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    tracks = list_tracks(args.data, args.split)[: args.max_tracks]
    rows = build_rows(args, device)
    res = evaluate(rows, tracks, device, args.quiet)
    res["targets"] = check_targets(res["rows"])
    meta = {"machine": machine(args.threads), "date": today(),
            "command": command_line(__file__, sys.argv[1:] if argv is None else argv),
            "threads": args.threads, "device": device, "data": str(args.data), "split": args.split}
    md = markdown(res, meta)
    out = {**meta, "protocol": "msdm", "protocol_version": get_protocol("msdm").version,
           "latentmix_version": __version__, "targets_spec": TARGETS, **res}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, allow_nan=True) + "\n")
    if args.write:
        path = write_section("separation", md)
        print(f"wrote {path}", file=sys.stderr)
    return out, md


def main(argv=None) -> int:
    try:
        _, md = run(argv)
    except LatentmixError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
