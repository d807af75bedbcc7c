"""The msdm and lass protocols: window counts, silence filtering, hand-computed values, folder scoring."""
import math

import numpy as np
import pytest
import torch

from latentmix.audio import write_audio
from latentmix.errors import ConfigError, InputError
from latentmix.metrics.protocols import format_table, get_protocol, is_silent, score_folders
from latentmix.metrics.sisdr import si_snr_msdm

SR = 22050


def _stems(seconds, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(4, int(seconds * SR), generator=g, dtype=torch.float64)


def test_msdm_window_count():
    p = get_protocol("msdm")
    w = p.windows(10 * SR)
    assert [a / SR for a, _ in w] == [0, 2, 4, 6]
    assert all(b - a == 4 * SR for a, b in w)
    w11 = p.windows(11 * SR)                       # ceil((11 - 2) / 2) = 5, the last clipped to 3 s
    assert len(w11) == 5 and w11[-1] == (8 * SR, 11 * SR)
    assert p.windows(SR) == []


def test_silence_threshold_is_norm_over_length():
    n = 4 * SR
    # ||x|| / n = a * sqrt(n) / n for a constant a: silent iff a < 1.5e-5 * sqrt(n) (about 4.45e-3 here)
    edge = 1.5e-5 * math.sqrt(n)
    assert is_silent(torch.full((n,), 0.9 * edge))
    assert not is_silent(torch.full((n,), 1.1 * edge))


def test_msdm_skips_windows_with_one_active_stem():
    refs = _stems(10)
    refs[1:, : 4 * SR] = 0                         # window 0: only bass active -> skipped
    refs[1:, 4 * SR: 6 * SR] = 0                   # window 1 ([2, 6) s): only bass -> skipped
    p = get_protocol("msdm")
    recs = p.evaluate_track(refs, refs)
    assert [r["start"] for r in recs] == [4 * SR, 6 * SR]    # window [4, 8) s has guitar etc. in [6, 8)
    assert recs[0]["silent"] == []


def test_msdm_values_by_hand_and_silent_stems_counted():
    refs = _stems(6, seed=1)
    refs[3] = 0                                     # piano silent everywhere: still scored (as MSDM)
    mix = refs.sum(0)
    est = refs + 0.01 * _stems(6, seed=2)
    p = get_protocol("msdm")
    recs = p.evaluate_track(refs, est, mix)
    assert len(recs) == 2 and recs[0]["silent"] == ["piano"]
    a, b = recs[1]["start"], recs[1]["end"]
    want = si_snr_msdm(est[0, a:b], refs[0, a:b]) - si_snr_msdm(mix[a:b], refs[0, a:b])
    assert recs[1]["bass"] == pytest.approx(want.item(), abs=1e-9)
    agg = p.aggregate(recs)
    assert agg["windows"] == 2
    assert agg["All"] == pytest.approx(np.mean([agg[s] for s in ("bass", "drums", "guitar", "piano")]))
    assert agg["bass"] == pytest.approx(np.mean([r["bass"] for r in recs]))
    assert agg["piano (non-silent)"] != agg["piano (non-silent)"]          # silent in every window: no figure
    assert agg["bass (non-silent)"] == pytest.approx(agg["bass"])
    recs[0]["silent"] = ["piano", "bass"]                                    # bass now silent in window 0
    agg = p.aggregate(recs)
    assert agg["bass (non-silent)"] == pytest.approx(recs[1]["bass"])
    assert agg["All (non-silent)"] == pytest.approx(np.mean([agg[f"{s} (non-silent)"] for s in
                                                             ("bass", "drums", "guitar")]))
    table = format_table({"m": agg})
    assert "MSDM exact / non-silent" in table.splitlines()[0]
    assert f"| {agg['bass']:.2f} / {agg['bass (non-silent)']:.2f} |" in table


def test_msdm_no_zero_mean():
    refs = _stems(4, seed=3)
    p = get_protocol("msdm")
    clean = p.evaluate_track(refs, refs + 1e-4 * _stems(4, seed=4))[0]["bass"]
    dc = p.evaluate_track(refs, refs + 1e-4 * _stems(4, seed=4) + 0.05)[0]["bass"]
    assert dc < clean - 10                          # a DC offset is penalised: no mean removal


def test_lass_protocol_chunks_and_value():
    g = torch.Generator().manual_seed(0)
    refs = 0.1 * torch.randn(2, 3 * 65536 + 100, generator=g, dtype=torch.float64)
    refs[1, 65536: 2 * 65536] = 0                   # chunk 1 has a silent source -> skipped
    est = refs + 0.1 * 10 ** (-10 / 20) * torch.randn(refs.shape, generator=g, dtype=torch.float64)
    p = get_protocol("lass")
    recs = p.evaluate_track(refs, est)
    assert [r["start"] for r in recs] == [0, 2 * 65536]
    assert all(r["frames"] == 1 for r in recs)
    assert recs[0]["bass"] == pytest.approx(10.0, abs=0.2)  # plain per-frame SNR in v4 images mode
    assert get_protocol("lass", chunks_per_track=1).evaluate_track(refs, est)[0]["start"] == 0
    assert p.make_mixture(refs).allclose(0.5 * (refs[0] + refs[1]))


def test_unknown_protocol():
    with pytest.raises(ConfigError, match="known: lass, msdm"):
        get_protocol("musdb")


def _write_tracks(root, tracks, stems=("bass", "drums", "guitar", "piano"), seconds=6, noise=None, seed=0):
    rng = np.random.default_rng(seed)
    for t in tracks:
        for s in stems:
            x = 0.1 * rng.standard_normal(int(seconds * SR)).astype(np.float32)
            write_audio(root / t / f"{s}.wav", x[None], SR, subtype="FLOAT")


def test_score_folders_perfect_and_missing(tmp_path):
    ref, est = tmp_path / "ref", tmp_path / "est"
    _write_tracks(ref, ["Track00001", "Track00002"])
    _write_tracks(est, ["Track00001", "Track00002"])        # same seed -> identical estimates
    res = score_folders(ref, est, "msdm")
    assert res["tracks"] == 2 and res["results"]["windows"] == 4
    assert res["results"]["All"] > 60                        # perfect estimates
    (est / "Track00002" / "piano.wav").unlink()
    with pytest.raises(InputError, match="Track00002/piano.wav"):
        score_folders(ref, est, "msdm")
    with pytest.raises(InputError, match="no such folder"):
        score_folders(tmp_path / "nope", est, "msdm")


def test_format_table():
    t = format_table({"oracle": {"bass": 1.0, "drums": 2.0, "All": 1.5, "windows": 3}})
    assert t.splitlines()[0] == "| method | bass | drums | All | windows |"
    assert "| oracle | 1.00 | 2.00 | 1.50 | 3 |" in t
