"""Bayesian separation end to end on tiny random models: the pair sets, the counts command, the methods through
the registry and `latentmix separate` (any rate and channel count in; one-line errors, exit 2, nothing written),
and the evaluation records."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from latentmix.cli import main
from latentmix.codec.model import Codec
from latentmix.data.pairs import build_pairs
from latentmix.priors.shards import codec_hash
from latentmix.priors.transformer import CodeTransformer
from latentmix.separation.bayesian import BayesianSeparator
from latentmix.separation.bayesian.counts import CodeCounts
from latentmix.separation.registry import get_method


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("bayes_models")
    torch.manual_seed(0)
    codec = Codec(base_channels=4, strides=[4, 8], latent_dim=8, dilations=[1],
                  quantizer={"type": "rvq", "num_codebooks": 3, "codebook_size": 16, "codebook_dim": 4}).eval()
    codec.save(root / "codec.safetensors")
    paths = []
    for stem in ("bass", "drums"):
        p = CodeTransformer(num_codebooks=2, codebook_size=16, dim=16, depth=1, heads=2,
                            codec={"hash": codec_hash(codec), "stem": stem})
        p.save(root / f"{stem}.safetensors")
        paths.append(str(root / f"{stem}.safetensors"))
    return {"codec": codec, "codec_path": str(root / "codec.safetensors"), "priors": ",".join(paths), "root": root}


def test_pairs_split_by_track_and_label_coherence(tiny_dataset, tmp_path):
    n = build_pairs(tiny_dataset, tmp_path / "pairs", test_fraction=0.34, seed=1)
    assert n == {"train": 8, "test": 4}                      # 4 + 2 tracks: a coherent and an incoherent pair each
    used = {}
    for split in ("train", "test"):
        for meta in (tmp_path / "pairs" / split).glob("*/metadata.json"):
            m = json.loads(meta.read_text())
            assert m["coherent"] == (m["bass"] == m["drums"])
            used.setdefault(split, set()).update({m["bass"], m["drums"]})
            assert sf.info(str(meta.parent / "bass.wav")).frames > 0
    assert not used["train"] & used["test"]                  # no stem in both parts
    again = tmp_path / "again"
    build_pairs(tiny_dataset, again, test_fraction=0.34, seed=1)
    a = sorted(p.read_text() for p in (tmp_path / "pairs").glob("*/*/metadata.json"))
    assert a == sorted(p.read_text() for p in again.glob("*/*/metadata.json"))


def test_counts_command_is_resumable(tiny_dataset, tmp_path, models, capsys):
    build_pairs(tiny_dataset, tmp_path / "pairs", test_fraction=0.34, seed=1)
    out = tmp_path / "counts.safetensors"
    argv = ["data", "counts", "--pairs", str(tmp_path / "pairs"), "--out", str(out), "--codec",
            models["codec_path"], "--levels", "2", "--quiet"]
    assert main(argv) == 0
    c = CodeCounts.load(out)
    assert c.pairs == 8 and c.levels == 2
    frames = models["codec"].num_frames(4 * 22050)                           # every pair: 4 s, both orders
    assert all(int(x.sum()) == 2 * 8 * frames for x in c.counts)
    capsys.readouterr()
    assert main(argv) == 0
    assert "counted 0 new pair(s), 8 in all" in capsys.readouterr().out
    assert main(["data", "counts", "--pairs", str(tmp_path / "pairs"), "--out", str(out), "--codec",
                 models["codec_path"], "--levels", "1", "--quiet"]) == 2       # another level count: refused


@pytest.mark.parametrize("method,opts", [("lq-vae", {"chains": 3}), ("lq-vae", {"likelihood": "codesum"}),
                                         ("lass", {"beams": 2}), ("hybrid", {"chains": 2})])
def test_methods_separate_through_the_registry(models, tmp_path, method, opts):
    counts = CodeCounts(16, 2, codec_hash(models["codec"]))
    torch.manual_seed(1)
    counts.add(*[torch.randint(0, 16, (2, 50)) for _ in range(3)])
    sep = get_method(method, model=models["codec"], priors=models["priors"], counts=counts, topk=4, **opts)
    assert isinstance(sep, BayesianSeparator) and sep.stems == ("bass", "drums")
    mix = 0.1 * torch.randn(2, 1, 2000)
    est = sep.separate(mix)
    assert est.shape == (2, 2, 2000) and torch.isfinite(est).all()
    for how in ("posterior", "mixture", "agreement", "mean"):
        e, s = sep.run(mix)
        assert sep.choose(e, s, mix, how).shape == (2, 2, 2000)
    stereo = sep.separate(0.1 * torch.randn(2, 44100), sample_rate=44100)      # any rate and channel count
    assert stereo.shape == (1, 2, 44100)


def write(path, x, sr=22050):
    sf.write(str(path), np.asarray(x, dtype=np.float32).T, sr)


def test_cli_separate_writes_stems_and_fails_cleanly(models, tmp_path, capsys):
    mix = tmp_path / "song.wav"
    write(mix, 0.1 * np.random.default_rng(0).standard_normal((2, 32000)), 32000)   # stereo, 32 kHz
    out = tmp_path / "out"
    base = ["separate", str(mix), "-o", str(out), "--model", models["codec_path"], "--priors", models["priors"],
            "--quiet"]
    assert main(base + ["--method", "lq-vae", "--chains", "2"]) == 0
    assert sorted(p.name for p in (out / "song").iterdir()) == ["bass.wav", "drums.wav"]
    short = tmp_path / "short.wav"
    write(short, np.zeros((1, 20)))                                               # hop: 32 samples
    bad_out = tmp_path / "bad"
    assert main(["separate", str(short), "-o", str(bad_out), "--model", models["codec_path"], "--priors",
                 models["priors"], "--method", "lq-vae", "--beams", "2", "--quiet"]) == 2
    wrong = f"{models['codec_path']},{models['codec_path']}"                           # codec files as priors
    assert main(["separate", str(mix), "-o", str(bad_out), "--model", models["codec_path"], "--priors", wrong,
                 "--method", "hybrid", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "expected 'prior'" in err[-1]
    assert "shorter than one frame" in err[-2]
    assert not bad_out.exists()


def test_evaluation_records_rows_and_oracle_labels(models, tiny_dataset):
    from latentmix.evaluation.bayesian import BayesEvaluation, evaluate_bayesian
    sep = BayesianSeparator("lq-vae", codec=models["codec"], priors=models["priors"], chains=2, topk=4)
    ev = evaluate_bayesian([("toy", sep, True)], tiny_dataset, "train", max_tracks=2, baselines=False)
    assert len(ev.chunks) == 2
    assert "toy | ORACLE best-of-2" in ev.rows and "toy | mixture + mask" in ev.rows
    for r in ev.rows.values():
        assert r.summary["windows"] == 2 and np.isfinite(r.summary["All"])
    oracle = ev.rows["toy | ORACLE best-of-2"].summary["All"]
    assert all(oracle >= ev.rows[f"toy | {h}"].summary["All"] - 1e-9 for h in ("posterior", "mixture"))
    assert BayesEvaluation.from_json(ev.to_json()).rows.keys() == ev.rows.keys()
