"""Same-budget peers: train HTDemucs, Demucs and an EnCodec codec here with latentmix's one loop, then put them
beside latentmix's models (separation on two test sets, codec at matched bitrates) in benchmarks/RESULTS.md.

  python benchmarks/peers.py train NAME --data data/slakhlike --out runs/peer_NAME --minutes 30
  python benchmarks/peers.py separation --data data/slakhlike --data2 data/slakhlike_sf2 --peer NAME=PATH ...
  python benchmarks/peers.py separation --test FluidR3_GM=data/test_fluidr3 --test TimGM6mb=data/test_timgm6mb ...
  python benchmarks/peers.py codec --data data/slakhlike --peer PATH [--write]
  python benchmarks/peers.py irm-resolution --data data/slakhlike [--write]

NAME: htdemucs | demucs | encodec, or spec | spec_low (latentmix's separator presets, from scratch, 2 s windows).
`train` gives every model the same wall-clock budget: it times three training steps, sets train.steps so that the
cosine schedule ends at the budget, and stops the run at the budget (train.max_seconds) whatever happens. Install
the peers with `make peers`; their model classes are the package benchmarks/peer_models/.
The scoring is latentmix.evaluation's (separation and codec), as in the other benchmarks.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, fmt_params, machine, parse_named, today, write_section  # noqa: E402

from latentmix import SAMPLE_RATE  # noqa: E402
from latentmix.errors import ConfigError, LatentmixError  # noqa: E402

PEERS = ("htdemucs", "demucs", "encodec")
OWN = ("spec", "spec_low")          # latentmix's separator presets, trained from scratch the same way as the peers
IRM_ROW, SHIPPED_ROW = "IRM (oracle)", "shipped default"
WARMUP_SECONDS = 1.0
CODEC_METRICS = ("si_sdr", "mel_distance", "mrstft_distance")


# ------------------------------------------------------------------ training
def peer_task(name: str):
    """(Task class, default config) of a peer."""
    if name in ("htdemucs", "demucs"):
        from peer_models.separators import PeerSeparatorTask, peer_separator_config
        return PeerSeparatorTask, peer_separator_config(name)
    if name == "encodec":
        from peer_models.codecs import PeerCodecTask, peer_codec_config
        return PeerCodecTask, peer_codec_config()
    if name in OWN:     # the preset with the peers' windows (2 s) so that only the architecture differs
        from latentmix.config import apply_overrides, load_config
        from latentmix.train.tasks.separator import SeparatorTask
        return SeparatorTask, apply_overrides(load_config(name, "separator"), ["train.segment_seconds=2.0"])
    raise ConfigError(f"unknown peer '{name}' (known: {', '.join(PEERS + OWN)})")


def seconds_per_step(task_cls, config: dict, data_root, n: int = 3) -> float:
    """Median wall time of n training steps (after one untimed) with the task's own batches and AdamW."""
    from torch.utils.data import DataLoader
    torch.manual_seed(0)
    task = task_cls(config, str(data_root), 0)
    model = task.build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loader = iter(DataLoader(task.train_dataset(), batch_size=config["train"]["batch_size"], shuffle=True))
    times = []
    for i in range(n + 1):
        batch = next(loader)
        t0 = time.perf_counter()
        out = task.training_step(model, batch, i)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def train_peer(name: str, data_root, out_dir, minutes: float, seed: int = 0, sets=(), quiet: bool = False,
               seconds_per_step_hint: float | None = None, resume: bool = False) -> dict:
    """Train peer `name` for `minutes` of wall-clock time; returns the loop's result. seconds_per_step_hint
    replaces the three-step timing (use it when the machine is busier now than it will be during the run)."""
    from latentmix.config import apply_overrides
    from latentmix.train import train
    task_cls, config = peer_task(name)
    config = apply_overrides(config, list(sets))
    budget = 60.0 * float(minutes)
    if budget <= 0:
        raise ConfigError(f"--minutes {minutes}: must be positive")
    sps = seconds_per_step_hint or seconds_per_step(task_cls, config, data_root)
    # validation runs inside the budget too: leave it ~8 % of the time, as the latentmix runs had
    steps = max(10, int(0.92 * budget / sps))
    if resume:      # use the rest of the budget of a run that ended early (its earlier wall time counts)
        from latentmix.train.state import checkpoint_path, load_checkpoint
        meta, _ = load_checkpoint(checkpoint_path(Path(out_dir)))
        steps = int(meta["step"]) + max(1, int((budget - float(meta.get("elapsed", 0.0))) / sps))
    config["train"].update(steps=steps, max_seconds=budget, seed=seed)
    print(f"{name}: {sps:.2f} s per step -> train.steps {steps} for a {minutes:g} min budget", file=sys.stderr)
    return train(task_cls, config, data_root, out_dir, seed=seed, quiet=quiet, config_name=f"peer:{name}",
                 resume=resume)


# ------------------------------------------------------------------ separation
def _training_line(header: dict) -> str:
    p = (header or {}).get("provenance") or {}
    if "steps" not in p:
        return "-"
    wall = f", {p['wall_time_s'] / 60:.0f} min" if p.get("wall_time_s") else ""
    return f"{p['steps']} steps{wall}"


def _ratio(a: float, b: float) -> str:
    """a / b of two SI-SDRi or distance figures; n/a when b is not positive (a ratio of dB then means nothing)."""
    return f"{a / b:.2f}" if b > 0 and a == a and b == b else "n/a"


def separation_rows(args, device: str) -> list:
    """latentmix files (--model), the shipped default (--shipped), peers (--peer) and the IRM, as candidates of
    latentmix.evaluation.separation; each gets .training (its provenance line) and, for peers, .net."""
    from peer_models.separators import PeerSeparator
    from latentmix.evaluation.separation import Candidate
    from latentmix.separation.registry import get_method
    from latentmix.separation.supervised import SupervisedSeparator
    rows = []
    for name, path in parse_named(args.model, "--model", {IRM_ROW, SHIPPED_ROW}):
        rows.append(Candidate(get_method("supervised", model=path, device=device), name, kind="latentmix", path=path))
    if args.shipped:
        m = get_method("supervised", model="default", device=device)
        rows.append(Candidate(m, SHIPPED_ROW, kind="shipped", path=m.path))
    for name, path in parse_named(args.peer, "--peer", {IRM_ROW, SHIPPED_ROW}):
        model = PeerSeparator.load(path, device=device)
        model.path = path
        rows.append(Candidate(SupervisedSeparator(model=model, device=device), name, kind="peer", path=path))
        rows[-1].net = model.config["net"]
    rows.append(Candidate(get_method("oracle-irm", device=device), IRM_ROW, kind="oracle"))
    for r in rows:
        r.training = _training_line(getattr(r.model, "header", None) or {})
    return rows


NS = " (non-silent)"


def table_rows(ev) -> dict:
    """{name: the result's flat row + pct_irm / pct_irm_ns (All, and the non-silent All, as % of the IRM's)}."""
    out = {name: r.row() for name, r in ev.results.items()}
    irm, irm_ns = out[IRM_ROW]["All"], out[IRM_ROW].get("All" + NS, float("nan"))
    for row in out.values():
        row["pct_irm"] = 100.0 * row["All"] / irm if irm and irm > 0 else float("nan")
        ns = row.get("All" + NS, float("nan"))
        row["pct_irm_ns"] = 100.0 * ns / irm_ns if irm_ns == irm_ns and irm_ns > 0 else float("nan")
    return out


def _ns(row: dict, key: str) -> float:
    """The non-silent-stems figure of a row (MSDM's exact one where the row has no non-silent figure)."""
    return row.get(key + NS, row[key])


def separation_markdown(results: dict, rows, meta: dict, ref: str | None) -> tuple[str, dict]:
    from latentmix.metrics.protocols import get_protocol
    stems = get_protocol("msdm").stems
    training = {r.name: r.training for r in rows}
    peers = [r.name for r in rows if r.kind == "peer"]
    mine = ref or (SHIPPED_ROW if any(r.kind == "shipped" for r in rows) else None)
    L = [f"## Same-budget peers: separation{meta.get('heading', '')}", "",
         f"Machine: {meta['machine']}; date {meta['date']}; command `{meta['command']}`.", "",
         f"Budget: {meta['budget']}", "",
         "msdm protocol v1 (SI-SNRi dB per stem, All = mean of the stem means, kept 4 s windows), mixture = sum of "
         "the four stems (plus other.wav where a track has one: heard, not scored), every model run like "
         "`latentmix separate` (its own segment, overlap 0.25). Each score cell is MSDM's exact figure / the "
         "non-silent-stems figure (a stem's windows where it is silent left out: "
         "MSDM's rule gives a silent stem with a near-zero estimate a huge SI-SNRi); % of IRM and the ratios use "
         "the non-silent All (n/a when the row's is not positive). Speed: "
         f"{meta['threads']} torch thread(s), separation calls only.", ""]
    verdict = {}
    for key, res in results.items():
        R = res["rows"]
        ship = _ns(R[SHIPPED_ROW], "All") if SHIPPED_ROW in R else float("nan")
        refv = _ns(R[ref], "All") if ref in R else None
        L += [f"### {res['title']}", "", f"`{res['data']}`: {res['tracks']} tracks, {res['audio_seconds']:.0f} s.", "",
              "| method | " + " | ".join(stems) + " | All | % of IRM | shipped / row |"
              + (f" {ref} / row |" if ref else "") + " params | s per audio s | training |",
              "|---|" + "---:|" * (len(stems) + 3 + (1 if ref else 0) + 2) + "---|"]
        for name, r in R.items():
            cells = [f"{r[s]:.2f} / {_ns(r, s):.2f}" for s in stems] + [
                f"**{r['All']:.2f} / {_ns(r, 'All'):.2f}**", f"{r['pct_irm_ns']:.0f} %", _ratio(ship, _ns(r, "All"))]
            if ref:
                cells.append(_ratio(refv, _ns(r, "All")))
            cells += [fmt_params(r["params"]), f"{r['sec_per_sec']:.4f}", training.get(name, "-")]
            L.append(f"| {name} | " + " | ".join(cells) + " |")
        L.append("")
        if mine in R:
            for n in peers:
                lost = [s for s in stems if _ns(R[mine], s) < _ns(R[n], s)]
                verdict[f"{key}:{n}"] = {"ours": mine, "lost_stems": lost, "pass": not lost,
                                         "ours_all": _ns(R[mine], "All"), "peer_all": _ns(R[n], "All")}
    if verdict:
        L.append(f"Target ({mine} ahead of each same-budget peer on every stem, non-silent figure): " + "; ".join(
            f"{k.split(':', 1)[0]} vs {k.split(':', 1)[1]}: " + ("PASS" if v["pass"] else
                                                                 "MISS (" + ", ".join(v["lost_stems"]) + ")")
            for k, v in verdict.items()) + ".")
    L += [""] + [f"- {r.name}: {r.detail}" for r in rows]
    return "\n".join(L), verdict


TITLES = {"builtin": "built-in test split (procedural timbres, the training renderer)",
          "soundfont": "SoundFont test set (the same test songs' MIDI through FluidR3_GM: timbres no model trained on)"}


def test_sets(args) -> list[tuple[str, str, str]]:
    """(key, title, root) of every test set: --data, --data2 and each --test TITLE=ROOT (key = its title)."""
    out = [(k, TITLES[k], root) for k, root in (("builtin", args.data), ("soundfont", args.data2)) if root]
    out += [(title, title, root) for title, root in parse_named(args.test, "--test", set(TITLES))]
    if not out:
        raise ConfigError("no test set: give --data, --data2 or --test TITLE=ROOT")
    return out


def run_separation(args) -> tuple[str, dict]:
    from latentmix.data.datasets import list_tracks
    from latentmix.device import resolve_device
    from latentmix.evaluation.separation import evaluate_separation
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sets = test_sets(args)
    rows = separation_rows(args, device)
    results = {}
    for key, title, root in sets:
        tracks = list_tracks(root, args.split)[: args.max_tracks]
        ev = evaluate_separation(rows, root, args.split, "msdm", tracks=tracks, device=device,
                                 warmup_seconds=WARMUP_SECONDS, progress=not args.quiet)
        results[key] = {"title": title, "rows": table_rows(ev), "audio_seconds": ev.audio_seconds,
                        "tracks": len(ev.tracks), "data": f"{root}/{args.split}"}
    meta = {"machine": machine(args.threads), "date": today(), "threads": args.threads,
            "command": command_line(__file__, args.argv), "budget": args.budget,
            "heading": f" ({args.section})" if args.section else ""}
    md, verdict = separation_markdown(results, rows, meta, args.same_budget)
    return md, {**meta, "results": results, "targets": verdict}


# ------------------------------------------------------------------ codec
def run_codec(args) -> tuple[str, dict]:
    from peer_models.codecs import PeerCodec
    from latentmix.checkpoint import read_header
    from latentmix.codec.model import Codec
    from latentmix.evaluation.codec import (MIN_COMPARE_KBPS, codec_speed, concatenated_mixture, evaluate_codec,
                                            load_items, match_opus, opus_kbps_request)
    from latentmix.pretrained.registry import resolve_model
    torch.set_num_threads(args.threads)
    ours_path = resolve_model(args.model, "codec")
    ours, peer = Codec.load(ours_path).eval(), PeerCodec.load(args.peer)
    if ours.hop_length != peer.hop_length or ours.codebook_size != peer.codebook_size:
        raise ConfigError("the peer codec must share latentmix's frame rate and codebook size for matched bitrates")
    items = load_items(args.data, args.split, args.seconds, args.max_tracks)
    levels = [n for n in args.levels if n <= min(ours.num_codebooks, peer.num_codebooks)]
    want = sorted({round(opus_kbps_request(ours.bitrate(n), "hard-cbr"), 3) for n in levels
                   if ours.bitrate(n) / 1000 >= MIN_COMPARE_KBPS})
    ev_ours = evaluate_codec(ours, items, name="latentmix", metrics=CODEC_METRICS, opus_kbps=want,
                             opus_mode="hard-cbr", progress=not args.quiet)
    ev_peer = evaluate_codec(peer, items, name="peer", metrics=CODEC_METRICS, progress=not args.quiet)
    q_ours, q_peer, opus = ev_ours.codec_summaries(), ev_peer.codec_summaries(), ev_ours.opus_summaries()
    x_speed = concatenated_mixture(args.data, args.split, args.speed_seconds)
    speed = {"latentmix": codec_speed(ours, x_speed, args.threads), "peer": codec_speed(peer, x_speed, args.threads)}
    n_ours, n_peer = (sum(p.numel() for p in m.parameters()) for m in (ours, peer))
    date = today()
    L = ["## Same-budget peers: codec", "",
         f"Machine: {machine(args.threads)}; date {date}; command `{command_line(__file__, args.argv)}`.", "",
         f"Budget: {args.budget}", "",
         f"latentmix: `{ours_path}` ({n_ours / 1e6:.2f} M parameters, {_training_line(read_header(ours_path))}); "
         f"EnCodec peer: `{args.peer}` ({n_peer / 1e6:.2f} M parameters, "
         f"{_training_line(read_header(args.peer))}). Both: hop 320 at 22050 Hz, 1024-code RVQ levels, so level n "
         f"is the same bitrate for both. {len(items)} test mixtures x {args.seconds:g} s (the middle of each "
         "track); mel = DAC-style 7-scale log-mel L1 distance (lower is better), SI-SDR zero-mean dB. Ratios: "
         "latentmix / peer (mel: < 1 means latentmix is better; SI-SDR: > 1 better when both are positive). Opus "
         "(hard CBR, delay-compensated as in benchmarks/codec.py) at the smallest rate >= the codecs' "
         "(only >= 6 kbps).",
         "",
         "| levels | kbps | latentmix mel | EnCodec mel | mel ratio | Opus mel (kbps) | latentmix SI-SDR | "
         "EnCodec SI-SDR | SI-SDR ratio | Opus SI-SDR |",
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    verdict = {}
    for n in levels:
        kb = ours.bitrate(n) / 1000
        a, b = q_ours[n].metrics, q_peer[n].metrics
        o = match_opus(kb, opus) if opus else None
        om = f"{o.metrics['mel_distance']:.2f} ({o.kbps:.1f})" if o else "-"
        osd = f"{o.metrics['si_sdr']:.2f}" if o else "-"
        L.append(f"| {n} | {kb:.2f} | {a['mel_distance']:.3f} | {b['mel_distance']:.3f} | "
                 f"{_ratio(a['mel_distance'], b['mel_distance'])} | {om} | {a['si_sdr']:.2f} | {b['si_sdr']:.2f} | "
                 f"{_ratio(a['si_sdr'], b['si_sdr']) if a['si_sdr'] > 0 else 'n/a'} | {osd} |")
        verdict[n] = {"kbps": kb, "ours": a["mel_distance"], "peer": b["mel_distance"],
                      "pass": bool(a["mel_distance"] <= b["mel_distance"])}
    sl, sp = speed["latentmix"], speed["peer"]
    L += ["", f"Speed (encode all levels + decode, {sl.audio_s:.0f} s of audio, {args.threads} thread(s), best of 3, "
          f"both timed in the same conditions): latentmix "
          f"{sl.best:.1f}x real time, EnCodec {sp.best:.1f}x (ratio {sl.best / sp.best:.2f}).", "",
          "Target (latentmix mel <= EnCodec mel at the same bitrate): " + "; ".join(
              f"{v['kbps']:.2f} kbps {v['ours']:.3f} vs {v['peer']:.3f} {'PASS' if v['pass'] else 'MISS'}"
              for v in verdict.values()) + "."]
    return "\n".join(L), {"date": date, "quality": {"latentmix": ev_ours.to_json(), "peer": ev_peer.to_json()},
                          "opus": [o.to_json() for o in opus], "speed": {k: v.to_json() for k, v in speed.items()},
                          "targets": verdict}


# ------------------------------------------------------------------ why Demucs wins on bass
def run_irm_resolution(args) -> tuple[str, dict]:
    """The ideal-ratio-mask ceiling per stem at several STFT sizes (hop n_fft/4): how much a mask separator can
    gain on each stem from frequency resolution alone."""
    from latentmix.data.datasets import list_tracks
    from latentmix.evaluation.separation import evaluate_separation, oracle
    from latentmix.metrics.protocols import get_protocol
    torch.set_num_threads(args.threads)
    P = get_protocol("msdm")
    tracks = list_tracks(args.data, args.split)[: args.max_tracks]
    cands = [oracle(P, name=str(n_fft), whole=True, n_fft=n_fft, hop=n_fft // 4) for n_fft in args.n_fft]
    ev = evaluate_separation(cands, args.data, args.split, P, tracks=tracks, progress=not args.quiet)
    rows = {n_fft: ev.results[str(n_fft)].summary for n_fft in args.n_fft}
    L = ["## Same-budget peers: the mask ceiling against STFT size", "",
         f"Machine: {machine(args.threads)}; date {today()}; command `{command_line(__file__, args.argv)}`.", "",
         f"IRM (power 2, hop n_fft/4) on `{args.data}/{args.split}` ({len(tracks)} tracks), msdm v1 SI-SNRi dB. A mask "
         "separator cannot beat its STFT's ceiling; the stems whose ceiling moves most with n_fft are the ones a "
         "short STFT holds back.", "",
         "| n_fft | Hz per bin | " + " | ".join(P.stems) + " | All |", "|---:|---:|" + "---:|" * (len(P.stems) + 1)]
    for n, r in rows.items():
        cells = " | ".join(f"{r[s]:.2f}" for s in P.stems)
        L.append(f"| {n} | {SAMPLE_RATE / n:.1f} | {cells} | {r['All']:.2f} |")
    return "\n".join(L), {"rows": {str(k): v for k, v in rows.items()}}


# ------------------------------------------------------------------ command line
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one peer for a wall-clock budget")
    t.add_argument("name", choices=PEERS + OWN, help="a peer, or one of latentmix's separator presets")
    t.add_argument("--data", required=True, help="MSDM-layout dataset root (e.g. data/slakhlike)")
    t.add_argument("--out", required=True, help="run folder (model.safetensors is written there)")
    t.add_argument("--minutes", type=float, default=30.0, help="wall-clock training budget (default 30)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true", help="continue the run in --out until the budget is used "
                   "(for a run whose step plan ended early; with a constant LR this equals one longer run)")
    t.add_argument("--seconds-per-step", type=float, default=None,
                   help="skip the timing and plan train.steps with this step time")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    t.add_argument("--quiet", action="store_true")

    p = sub.add_parser("separation", help="score latentmix separators, peers and the IRM on test sets")
    p.add_argument("--data", default=None, help="built-in dataset root (e.g. data/slakhlike)")
    p.add_argument("--data2", default=None, help="second test set root (SoundFont renders of the test MIDI)")
    p.add_argument("--test", action="append", default=[], metavar="TITLE=ROOT",
                   help="another test set, its table titled TITLE (repeatable; e.g. 'TimGM6mb=data/test_timgm6mb')")
    p.add_argument("--split", default="test")
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="a latentmix separator file")
    p.add_argument("--shipped", action="store_true", help="add the shipped default separator")
    p.add_argument("--peer", action="append", default=[], metavar="NAME=PATH", help="a trained peer separator")
    p.add_argument("--same-budget", default=None, metavar="NAME", help="the latentmix row trained with the "
                   "peers' budget: adds a NAME / row ratio column")
    p.add_argument("--budget", default="not stated", help="the budget sentence written above the tables")
    p.add_argument("--max-tracks", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")

    c = sub.add_parser("codec", help="latentmix's codec vs the EnCodec peer and Opus at matched bitrates")
    c.add_argument("--data", required=True)
    c.add_argument("--split", default="test")
    c.add_argument("--model", default=None, help="latentmix codec file (default: the shipped codec)")
    c.add_argument("--peer", required=True, help="the trained EnCodec peer file")
    c.add_argument("--levels", type=int, nargs="+", default=[2, 4, 9, 12], help="RVQ levels to compare")
    c.add_argument("--seconds", type=float, default=8.0, help="excerpt per track for the quality figures")
    c.add_argument("--speed-seconds", type=float, default=30.0, help="audio timed for the speed figure")
    c.add_argument("--max-tracks", type=int, default=20)
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--budget", default="not stated", help="the budget sentence written above the table")
    r = sub.add_parser("irm-resolution", help="the IRM ceiling per stem at several STFT sizes")
    r.add_argument("--data", required=True)
    r.add_argument("--split", default="test")
    r.add_argument("--n-fft", type=int, nargs="+", default=[1024, 2048, 4096])
    r.add_argument("--max-tracks", type=int, default=None)
    r.add_argument("--threads", type=int, default=2)
    for q in (p, c, r):
        q.add_argument("--json", default=None, metavar="OUT.json", help="also write the numbers as JSON")
        q.add_argument("--write", action="store_true", help="replace this section of benchmarks/RESULTS.md")
        q.add_argument("--section", default=None, help="the RESULTS.md section --write replaces (default "
                       "peers-COMMAND, e.g. peers-separation)")
        q.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "train":
            res = train_peer(args.name, args.data, args.out, args.minutes, args.seed, args.set, args.quiet,
                             args.seconds_per_step, args.resume)
            print(f"{args.name}: {res['step']} steps in {res['wall_time_s']:.0f} s -> {args.out}/model.safetensors")
            return 0
        md, data = {"separation": run_separation, "codec": run_codec, "irm-resolution": run_irm_resolution}[
            args.command](args)
        print(md)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(data, indent=2, default=float) + "\n")
        if args.write:
            print(f"wrote {write_section(args.section or f'peers-{args.command}', md)}", file=sys.stderr)
    except LatentmixError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:          # peer_models.PeersMissing: the peer packages are not installed
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
