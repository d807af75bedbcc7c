"""benchmarks/peer_models/: each same-budget peer adapter trains for two steps through latentmix's loop, exports a
model file that loads back strictly, and runs at inference with the interface the benchmark uses."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
peer_models = pytest.importorskip("peer_models")
_have = peer_models.available()


def _two_steps(task_cls, config, data, out):
    from latentmix.train import train
    config["train"].update(steps=2, batch_size=2, log_every=1, val_every=0, val_items=2, ckpt_every=0,
                           tensorboard=False)
    res = train(task_cls, config, data, out, seed=0, quiet=True)
    assert res["step"] == 2 and torch.isfinite(torch.tensor(res["loss"]))
    return out / "model.safetensors"


@pytest.mark.skipif(not _have["demucs"], reason="demucs is not installed (make peers)")
@pytest.mark.parametrize("net", ["htdemucs", "demucs"])
def test_peer_separator_trains_and_separates(tiny_dataset, tmp_path, net):
    from peer_models.separators import PeerSeparator, PeerSeparatorTask, peer_separator_config
    from latentmix.separation.apply import separate_long
    from latentmix.separation.supervised import SupervisedSeparator
    cfg = peer_separator_config(net, segment_seconds=1.0)
    cfg["model"]["segment_seconds"] = 1.0
    cfg["model"]["kwargs"] = {"channels": 4, "depth": 3} if net == "demucs" else {"channels": 8, "t_layers": 1}
    path = _two_steps(PeerSeparatorTask, cfg, tiny_dataset, tmp_path / net)
    model = PeerSeparator.load(path)
    assert model.config["net"] == net and not model.training
    method = SupervisedSeparator(model=model)
    mix = torch.randn(1, 1, 22050 * 2) * 0.1
    est = separate_long(method, mix)
    assert est.shape == (1, 4, mix.shape[-1]) and torch.isfinite(est).all()


@pytest.mark.skipif(not _have["encodec"], reason="encodec is not installed (make peers)")
def test_peer_codec_trains_and_roundtrips(tiny_dataset, tmp_path):
    from peer_models.codecs import PeerCodec, PeerCodecTask, peer_codec_config
    cfg = peer_codec_config(segment_seconds=0.3)
    cfg["model"].update(n_filters=4, dimension=16, n_q=4, bins=16)
    path = _two_steps(PeerCodecTask, cfg, tiny_dataset, tmp_path / "encodec")
    model = PeerCodec.load(path)
    assert model.bitrate(2) == pytest.approx(2 * 4 * 22050 / 320)
    x = torch.randn(1, 1, 5000) * 0.1
    codes = model.encode(x, 2)
    assert codes.shape == (1, 2, -(-5000 // 320)) and int(codes.max()) < 16
    y = model.decode(codes)
    assert y.shape[-1] >= 5000 and torch.isfinite(y).all()


@pytest.mark.skipif(not _have["encodec"], reason="encodec is not installed (make peers)")
def test_peer_torchaudio_guard_refuses_use():
    ta = sys.modules["torchaudio"]
    if getattr(ta, "__file__", None):
        pytest.skip("a real torchaudio is installed")
    with pytest.raises(ImportError, match="peers run without torchaudio"):
        ta.load("x.wav")


@pytest.mark.skipif(not all(_have.values()), reason="the peer packages are not installed (make peers)")
def test_peers_benchmark_end_to_end(tiny_dataset, tmp_path, monkeypatch):
    """benchmarks/peers.py separation + codec on 2-step models: tables, ratios and targets are produced."""
    import json
    from peer_models.codecs import PeerCodecTask, peer_codec_config
    from peer_models.separators import PeerSeparatorTask, peer_separator_config
    from latentmix.codec.model import Codec
    from latentmix.config import load_config
    from latentmix.separation.models import build_separator
    bench = _bench_module()
    monkeypatch.setattr(bench, "write_section", lambda name, md: tmp_path / "RESULTS.md")
    cfg = peer_separator_config("htdemucs")
    cfg["model"]["kwargs"] = {"channels": 8, "t_layers": 1}
    ht = _two_steps(PeerSeparatorTask, cfg, tiny_dataset, tmp_path / "ht")
    ours = tmp_path / "spec.safetensors"
    build_separator(load_config("spec", "separator")["model"]).save(ours, {"steps": 0})
    out = tmp_path / "sep.json"
    assert bench.main(["separation", "--data", str(tiny_dataset), "--data2", str(tiny_dataset), "--quiet",
                       "--test", f"Third set={tiny_dataset}",
                       "--model", f"mine={ours}", "--peer", f"HTDemucs tiny={ht}", "--same-budget", "mine",
                       "--budget", "two steps", "--threads", "1", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["results"]) == {"builtin", "soundfont", "Third set"}
    assert res["results"]["Third set"]["title"] == "Third set"
    assert set(res["results"]["builtin"]["rows"]) == {"mine", "HTDemucs tiny", "IRM (oracle)"}
    # the verdict: the same-budget row against each peer, per stem on the non-silent figure
    assert set(res["targets"]) == {"builtin:HTDemucs tiny", "soundfont:HTDemucs tiny", "Third set:HTDemucs tiny"}
    for key, v in res["targets"].items():
        rows = res["results"][key.split(":")[0]]["rows"]
        lost = [s for s in ("bass", "drums", "guitar", "piano")
                if rows["mine"][f"{s} (non-silent)"] < rows["HTDemucs tiny"][f"{s} (non-silent)"]]
        assert v["lost_stems"] == lost and v["pass"] == (not lost) and v["ours"] == "mine"
    cc = peer_codec_config(segment_seconds=0.3)
    cc["model"].update(n_filters=4, dimension=16, n_q=4)
    enc = _two_steps(PeerCodecTask, cc, tiny_dataset, tmp_path / "enc")
    mine = tmp_path / "codec.safetensors"
    Codec.from_config(dict(load_config("cpu_small", "codec")["model"], quantizer=dict(
        load_config("cpu_small", "codec")["model"]["quantizer"], num_codebooks=4))).save(mine, {"steps": 0})
    out = tmp_path / "codec.json"
    assert bench.main(["codec", "--data", str(tiny_dataset), "--model", str(mine), "--peer", str(enc),
                       "--levels", "2", "4", "--seconds", "1", "--speed-seconds", "1", "--threads", "1", "--quiet",
                       "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["targets"]) == {"2", "4"} and res["speed"]["peer"]["best"] > 0
    out = tmp_path / "irm.json"
    assert bench.main(["irm-resolution", "--data", str(tiny_dataset), "--n-fft", "512", "2048", "--threads", "1",
                       "--quiet", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert set(rows) == {"512", "2048"} and rows["2048"]["All"] > 0


def _bench_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("peers_bench", Path(__file__).resolve().parents[1] / "benchmarks"
                                                  / "peers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_peers_benchmark_bad_input_one_line(tiny_dataset, tmp_path, capsys):
    bench = _bench_module()
    missing = tmp_path / "missing.safetensors"
    assert bench.main(["separation", "--data", str(tiny_dataset), "--peer", f"x={missing}", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "missing.safetensors" in err[0]
    assert bench.main(["separation", "--quiet"]) == 2
    assert "no test set" in capsys.readouterr().err
    assert bench.main(["train", "htdemucs", "--data", str(tiny_dataset), "--out", str(tmp_path / "r"),
                       "--minutes", "0"]) == 2
    assert "--minutes" in capsys.readouterr().err


def test_peer_separators_take_the_separator_data_settings(tiny_dataset):
    """The peers train on what latentmix's separators train on: train.effects_p and train.extra_data (stored
    roots and synth: songs) are settable for them too (#19's same-budget re-run on the new data)."""
    from peer_models.separators import PeerSeparatorTask, peer_separator_config
    from latentmix.config import apply_overrides
    from latentmix.data.fresh import FreshSongs
    cfg = apply_overrides(peer_separator_config("demucs"),
                          ["train.effects_p=0.3", "train.extra_data=[synth:procedural]"])
    ds = PeerSeparatorTask(cfg, str(tiny_dataset), 0).train_dataset()
    assert isinstance(ds.datasets[1], FreshSongs) and all(d.effects_p == 0.3 for d in ds.datasets)
