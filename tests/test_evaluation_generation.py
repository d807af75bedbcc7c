"""Generation scoring: n-gram baselines by hand, prior NLL equal to the model's loss, the clip classifier and the
Frechet distance on separable clips, tempo relations and the beat tracker on a click track, and the adherence,
continuation and speed runners end to end on tiny random models (real sampling, real decoding)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentmix.evaluation import clips as C
from latentmix.evaluation import generation as G
from latentmix.evaluation.code_ngrams import DISCOUNT, CodeNGrams

SR = 22050


def test_ngram_bits_match_the_formulas_by_hand():
    train = [np.array([[0, 1, 0, 1, 0, 1], [2, 2, 2, 2, 2, 2]])]
    g = CodeNGrams(2, 3).fit(train)
    assert g.tokens == 6 and g.uni[0].tolist() == [3, 3, 0]
    w = np.array([[[0, 1, 2], [2, 2, 0]]])                                  # one window, 2 levels, 3 frames
    bits = g.bits(w)
    p1 = (np.array([3, 3, 0]) + 1) / 9                                       # level 0, Laplace
    assert bits["unigram"][0] == pytest.approx(-np.log2(p1[[0, 1, 2]]).sum())
    # level 0 bigram: 0->1 seen 3 times of 3 (one successor type), 1->2 never (1 was followed by 0 twice)
    p01 = (3 - DISCOUNT) / 3 + DISCOUNT * 1 / 3 * p1[1]
    p12 = 0 + DISCOUNT * 1 / 2 * p1[2]
    assert bits["bigram"][0] == pytest.approx(-np.log2([p1[0], p01, p12]).sum())
    q1 = (np.array([0, 0, 6]) + 1) / 9                                       # level 1: 2->2 five times
    want = -np.log2([q1[2], (5 - DISCOUNT) / 5 + DISCOUNT / 5 * q1[2], DISCOUNT / 5 * q1[0]]).sum()
    assert bits["bigram"][1] == pytest.approx(want)
    periodic = np.array([[[0, 1] * 8, [2] * 16]])
    b = g.bits(periodic)
    assert b["bigram"][0] < 0.5 * b["unigram"][0]                             # the bigram sees the alternation


def test_code_windows_are_non_overlapping_and_skip_short_tracks():
    tracks = [np.arange(20).reshape(2, 10), np.zeros((2, 3), np.int64), np.ones((2, 8), np.int64)]
    w, owner = G.code_windows(tracks, 4)
    assert w.shape == (4, 2, 4) and owner == [0, 0, 2, 2]
    assert w[1, 0].tolist() == [4, 5, 6, 7]
    assert G.code_windows(tracks, 4, max_per_track=1)[0].shape[0] == 2
    with pytest.raises(Exception, match="window"):
        G.code_windows(tracks, 50)


class _Captions:
    """Caption -> a fixed random unit vector of `dim` (stands in for the sentence encoder, which is tested in
    test_generation; these runners only call encode())."""
    def __init__(self, dim: int = 4):
        self.dim = dim

    def encode(self, caps):
        out = []
        for c in caps:
            g = torch.Generator().manual_seed(sum(map(ord, c)))
            v = torch.randn(self.dim, generator=g)
            out.append(v / v.norm())
        return torch.stack(out)[:, None]


def test_prior_nll_is_the_models_loss_in_bits_and_reports_the_caption_free_nll():
    from latentmix.priors import CodeTransformer
    torch.manual_seed(0)
    prior = CodeTransformer(3, 8, dim=16, depth=1, heads=2, cond_dim=4).eval()
    rng = np.random.default_rng(0)
    held = [rng.integers(0, 8, (4, 25)) for _ in range(3)]
    train = [rng.integers(0, 8, (4, 40)) for _ in range(4)]
    caps = ["a rock song", "a jazz song", "a pop song"]
    res = G.evaluate_nll(prior, held, train, 10, captions=caps, encoder=_Captions())
    assert (res.windows, res.window_frames, res.tokens_per_level) == (6, 10, 60)
    assert res.train_tokens_per_level == 160 and len(res.levels) == 3
    w, owner = G.code_windows(held, 10)
    cond = _Captions().encode(caps)[torch.tensor(owner)]
    with torch.no_grad():
        loss = prior.loss(torch.as_tensor(w[:, :3]), cond)
    for lv in res.levels:
        assert lv.prior == pytest.approx(float(loss[f"prior/nll_l{lv.level}"]) / math.log(2), rel=1e-5)
        assert lv.prior_uncond is not None and lv.prior_uncond != lv.prior
        assert lv.unigram == pytest.approx(CodeNGrams(3, 8).fit(train).bits(w)["unigram"][lv.level] / 60)
    assert res.mean("prior") == pytest.approx(np.mean([lv.prior for lv in res.levels]))
    assert G.NLLResult.from_json(res.to_json()).levels[1] == res.levels[1]


def _clicks(bpm: float, seconds: float, freq: float, seed: int) -> np.ndarray:
    """A click track at `bpm` over a quiet tone at `freq` (a 'style')."""
    t = np.arange(int(seconds * SR)) / SR
    x = 0.05 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    period = int(round(60.0 / bpm * SR))
    for s in range(0, t.size, period):
        n = min(400, t.size - s)
        x[s:s + n] += 0.8 * np.exp(-np.arange(n) / 60.0) * np.sin(2 * np.pi * 2000 * np.arange(n) / SR)
    return x.astype(np.float32)


def _clip_set(n: int, seconds: float, seed: int) -> C.Clips:
    rng = np.random.default_rng(seed)
    styles, wavs, tempos = [], [], []
    for i in range(n):
        style = ("low", "high")[i % 2]
        bpm = (85.0, 115.0, 150.0)[(i // 2) % 3] * rng.uniform(0.98, 1.02)
        wavs.append(_clicks(bpm, seconds, 220.0 if style == "low" else 1760.0, seed * 1000 + i))
        styles.append(style)
        tempos.append(bpm)
    return C.Clips(np.stack(wavs), SR, styles, tempos, [f"a {s} song at {b:.0f} bpm" for s, b in zip(styles, tempos)],
                   [f"set/Track{i:03d}" for i in range(n)])


def test_beat_tracker_and_tempo_relations():
    assert C.tempo_bucket(99.9) == 0 and C.tempo_bucket(100) == 1 and C.tempo_bucket(135) == 2
    assert G.tempo_relation(121, 120) == "same" and G.tempo_relation(242, 120) == "double"
    assert G.tempo_relation(59, 120) == "half" and G.tempo_relation(100, 120) == "other"
    assert G.tempo_relation(0.0, 120) == "other"
    bpm = G.beat_tempo(_clicks(120.0, 6.0, 220.0, 0), SR)
    assert G.tempo_relation(bpm, 120.0) == "same"


def test_classifier_learns_separable_clips_and_frechet_distance_behaves():
    train, test = _clip_set(36, 2.0, 0), _clip_set(12, 2.0, 1)
    clf, labels = G.fit_classifier(train, epochs=200)
    f = C.features(test.wav, SR)
    assert f.shape == (12, 2 * C.N_MELS + len(C.BPM_GRID)) and np.isfinite(f).all()
    acc = C.accuracy(clf.predict(f), C.targets(test))
    assert acc["style"] == 1.0 and acc["tempo"] >= 0.75
    assert C.chance(labels, C.targets(test)) == {"style": 0.5, "tempo": pytest.approx(1 / 3)}
    e = clf.embedding(f)
    assert e.shape == (12, C.EMBED_DIM)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 3))
    assert C.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert C.frechet_distance(a, a + np.array([3.0, 0, 0])) == pytest.approx(9.0, rel=1e-6)
    mu = a.mean(0)                                     # N(mu, S) against N(2 mu, 4 S): |mu|^2 + tr S (1 + 4 - 4)
    assert C.frechet_distance(a, 2 * a) == pytest.approx(mu @ mu + np.trace(np.cov(a, rowvar=False)), rel=1e-6)


@pytest.fixture(scope="module")
def tiny_generator():
    from latentmix.codec.model import Codec
    from latentmix.generation import Generator
    from latentmix.priors import CodeTransformer
    from latentmix.priors.shards import codec_hash
    torch.manual_seed(0)
    codec = Codec(strides=[32], latent_dim=8, architecture="spectral",
                  quantizer={"type": "rvq", "num_codebooks": 3, "codebook_size": 16},
                  spectral={"dim": 16, "encoder_depth": 1, "decoder_depth": 1}).eval()
    torch.manual_seed(1)
    prior = CodeTransformer(2, 16, dim=16, depth=1, heads=2, cond_dim=384, context=256,
                            codec={"hash": codec_hash(codec)})
    gen = Generator(prior, codec)
    gen._text = _Captions(384)
    return gen


def test_adherence_scores_real_codec_unconditional_and_each_cfg(tiny_generator):
    train, held = _clip_set(24, 0.5, 0), _clip_set(10, 0.5, 1)
    clf, labels = G.fit_classifier(train, epochs=50)
    res = G.evaluate_adherence(tiny_generator, clf, labels, held, prompts=4, cfgs=(1.0, 3.0), batch=3)
    assert [r.condition for r in res.rows] == ["real", "real via codec (2 levels)", "unconditional", "cfg 1", "cfg 3"]
    assert (res.prompts, res.reference_clips, res.held_out_clips, res.train_clips) == (4, 6, 10, 24)
    assert res.uniform == {"style": 0.5, "tempo": pytest.approx(1 / 3)}
    for r in res.rows:
        assert r.clips == 4 and set(r.accuracy) == {"style", "tempo"} and math.isfinite(r.frechet)
    assert res.rows[0].seconds is None and res.rows[-1].seconds > 0
    assert G.AdherenceResult.from_json(res.to_json()).rows[2].condition == "unconditional"
    with pytest.raises(Exception, match="prompts"):
        G.evaluate_adherence(tiny_generator, clf, labels, held, prompts=10)


def test_continuation_measures_prompt_and_continued_tempo(tiny_generator):
    held = _clip_set(3, 2.0, 2)
    res = G.evaluate_continuation(tiny_generator, held, prompt_seconds=1.0, batch=2)
    assert len(res.items) == 3 and res.continue_seconds == pytest.approx(1.0)
    for it in res.items:
        assert it.generated == G.tempo_relation(it.continued_bpm, it.prompt_bpm)
        assert it.real == G.tempo_relation(it.real_next_bpm, it.real_prompt_bpm)
    fr = res.fractions("real")
    assert sum(fr.values()) == pytest.approx(1.0)


def test_speed_rows_with_and_without_cache_and_a_matched_rq(tiny_generator):
    threads = torch.get_num_threads()
    res = G.evaluate_speed(tiny_generator, seconds=0.3, prompt="a rock song", batches=(1, 4), frames=6,
                           profile_seconds=0.05, threads=1)
    assert [(r.batch, r.cache, r.model.startswith("RQ")) for r in res.rows] == [
        (1, True, False), (1, False, False), (1, True, True), (4, True, False), (4, False, False), (4, True, True)]
    assert all(r.tokens_per_s > 0 and r.frames == 6 for r in res.rows)
    assert res.rows[3].tokens_per_s == pytest.approx(4 * 2 * 6 / res.rows[3].seconds)
    from latentmix.priors import RQTransformer
    p, q = G.n_params(tiny_generator.prior), res.rows[2].params
    cfg = {k: v for k, v in res.rq_config.items() if k not in ("architecture", "text_encoder", "codec")}
    deeper = G.n_params(RQTransformer(**{**cfg, "depth": cfg["depth"] + 1}))
    assert res.rq_config["dim"] == 16 and abs(q - p) < abs(deeper - p)
    assert res.profile and res.profile[0]["self_ms"] >= res.profile[-1]["self_ms"]
    assert res.total_seconds > 0 and torch.get_num_threads() == threads


def test_levels_rows_decode_the_first_k_levels(tiny_generator):
    """One row per distinct K (sorted, out-of-range dropped); a row's audio is the codec's decode of the first K
    codes, scored against the clip; the record survives JSON."""
    from latentmix.metrics.spectral import mel_distance
    codec = tiny_generator.codec
    wavs = _clip_set(3, 0.5, 4).wav
    res = G.evaluate_levels(codec, wavs, [3, 1, 2, 2, 0, 7], modelled=2, sr=SR)
    assert [r.levels for r in res.rows] == [1, 2, 3] and (res.clips, res.modelled, res.total) == (3, 2, 3)
    x = torch.as_tensor(wavs)[:, None]
    with torch.inference_mode():
        y = codec.decode(codec.encode(x)[:, :1], x.shape[-1])
    assert res.rows[0].mel == pytest.approx(float(mel_distance(y, x)), rel=1e-4)
    assert all(math.isfinite(r.log_mel) and math.isfinite(r.si_sdr) for r in res.rows)
    assert G.LevelsResult.from_json(res.to_json()).rows[2].levels == 3
