"""BayesianSeparator: bass + drums from a 0.5 (b + d) mixture with two per-stem code priors, a likelihood and a
search (registered as the separation methods `lq-vae`, `lass` and `hybrid`).

  lq-vae  Gaussian likelihood (seed 001); latentmix's runs the partial-sum latent Gaussian on every searched level
  lass    count likelihood with beam search (LASS, seed 003), smoothed
  hybrid  count likelihood on the LQ-trained codec with ancestral sampling (seed 003); latentmix's adds the latent
          Gaussian to the counts
`PRESETS` are latentmix's settings (non-oracle selection, mask); `SEED_PRESETS` the seeds' own (their sigma,
lambda, beams and chains, one searched level, no mask; the benchmark scores them with oracle selection, as they
were reported). Any setting can be overridden by keyword (and on the command line).
"""
from __future__ import annotations

import time

import torch

from ...errors import ConfigError, InputError
from . import select as sel
from .likelihood import CodeSumGaussian, CountLikelihood, LatentGaussian, Limit, MixContext, Sum
from .search import check_priors, search

STEMS = ("bass", "drums")
MIX_GAIN = 0.5                                  # the lass protocol's mixture: 0.5 (bass + drums)
CHUNK = 65536                                   # the seeds' chunk (about 2.97 s at 22050 Hz)

PRESETS = {
    # sigma 0.05 (was 0.1): the sweep on 8 built-in and 7 FluidR3 chunks, All 2.67 -> 3.03 and 3.19 -> 4.19 dB
    "lq-vae": dict(likelihood="latent", mode="sample", chains=16, topk=16, levels=4, sigma=0.05,
                   select="mean", mask=True),
    "lass": dict(likelihood="counts", mode="beam", beams=10, topk=16, levels=4, lam=3.0, smoothing="backoff",
                 select="posterior", mask=True),
    "hybrid": dict(likelihood="counts+latent", mode="sample", chains=16, topk=16, levels=4, lam=1.0, sigma=0.1,
                   smoothing="backoff", select="mean", mask=True),
}
SEED_PRESETS = {
    "lq-vae": dict(likelihood="codesum", mode="sample", chains=64, topk=64, levels=1, sigma=0.4, select="posterior",
                   mask=False),
    "lass": dict(likelihood="counts", mode="beam", beams=10, topk=64, levels=1, lam=3.0, smoothing="additive",
                 alpha=1e-6, select="posterior", mask=False),
    "hybrid": dict(likelihood="counts", mode="sample", chains=64, topk=64, levels=1, lam=3.0, smoothing="additive",
                   alpha=1e-6, select="posterior", mask=False),
}
DEFAULTS = dict(likelihood="latent", mode="sample", chains=16, beams=10, topk=16, levels=4, sigma=0.1, lam=3.0,
                smoothing="backoff", alpha=1.0, select="mean", mask=True, temperature=1.0, seed=0)


def settings(method: str, seed_preset: bool = False, **overrides) -> dict:
    """The resolved settings of a method (latentmix's preset, or the seed's), with keyword overrides."""
    table = SEED_PRESETS if seed_preset else PRESETS
    if method not in table:
        raise ConfigError(f"unknown Bayesian method '{method}' ({', '.join(table)})")
    out = {**DEFAULTS, **table[method]}
    for k, v in overrides.items():
        if v is None:
            continue
        if k not in DEFAULTS:
            raise ConfigError(f"unknown Bayesian setting '{k}' ({', '.join(sorted(DEFAULTS))})")
        out[k] = v
    if overrides.get("beams") is not None and overrides.get("chains") is None:
        out["mode"] = "beam"
    elif overrides.get("chains") is not None and overrides.get("beams") is None:
        out["mode"] = "sample"
    return out


def _resolve(path, kind: str, flag: str):
    """resolve_model for the Bayesian files, whose hint names their own option (--priors, --counts)."""
    from ...errors import ModelFileError
    from ...pretrained.registry import resolve_model
    try:
        return resolve_model(path, kind)
    except ModelFileError as e:
        raise ModelFileError(str(e).replace("--model PATH", flag)) from None


def _load_priors(priors):
    from ...priors.transformer import CodeTransformer
    if priors is None:
        priors = (None, None)
    if isinstance(priors, str):
        priors = priors.split(",")
    if len(priors) != 2:
        raise ConfigError(f"priors: give two files, bass then drums (got {len(priors)})")
    out = []
    for stem, p in zip(STEMS, priors):
        out.append(p if isinstance(p, torch.nn.Module) else
                   CodeTransformer.load(_resolve(p or None, f"prior-{stem}", "--priors BASS,DRUMS")))
    return tuple(out)


class BayesianSeparator:
    """A separation method object (separation.registry): separate(mix (n, 1, T), refs=None) -> (n, 2, T)."""

    stems = STEMS
    needs_references = False

    def __init__(self, method: str = "hybrid", codec=None, priors=None, counts=None, seed_preset: bool = False,
                 device: str = "cpu", **opts):
        from ...codec.model import Codec
        from ...pretrained.registry import resolve_model
        self.name = method
        self.cfg = settings(method, seed_preset, **opts)
        self.codec = codec if isinstance(codec, torch.nn.Module) else Codec.load(resolve_model(codec, "codec"))
        self.codec.eval()
        self.codec_label = None if codec is None or isinstance(codec, torch.nn.Module) else str(codec)
        self.priors = _load_priors(priors)
        check_priors(*self.priors, self.codec)
        self.levels = self.priors[0].pattern.num_codebooks
        self.hop, self.sample_rate = self.codec.hop_length, self.codec.sample_rate
        self.min_samples = self.hop          # the CLI refuses shorter mixtures before writing anything
        self.segment_seconds = CHUNK / self.sample_rate
        self.lik = self._likelihood(counts)
        self.last_timing: dict = {}

    @classmethod
    def from_pretrained(cls, method: str = "hybrid", **kw) -> "BayesianSeparator":
        """The shipped codec, priors (and counts, for lass / hybrid) with `method`'s preset; kw override."""
        return cls(method, **kw)

    def _likelihood(self, counts):
        c = self.cfg
        parts = []
        for name in str(c["likelihood"]).split("+"):
            if name == "latent":
                parts.append(LatentGaussian(self.codec, c["sigma"]))
            elif name == "codesum":
                from pathlib import Path

                from ...codec.linearity import code_sum_table
                table = code_sum_table(self.codec, cache_dir=Path.home() / ".cache" / "latentmix")
                parts.append(CodeSumGaussian(self.codec, table, c["sigma"]))
            elif name == "counts":
                parts.append(CountLikelihood(self._counts(counts), c["lam"], c["smoothing"], c["alpha"]))
            else:
                raise ConfigError(f"unknown likelihood '{name}' (latent, codesum, counts, or a sum like counts+latent)")
        lik = parts[0] if len(parts) == 1 else Sum(parts)
        return Limit(lik, int(c["levels"]))

    def _counts(self, counts):
        from ...priors.shards import codec_hash
        from .counts import CodeCounts
        if counts is None or isinstance(counts, str) or hasattr(counts, "__fspath__"):
            counts = CodeCounts.load(_resolve(counts, "code-counts", "--counts FILE"))
        h = codec_hash(self.codec)
        if counts.codec_hash and counts.codec_hash != h:
            raise ConfigError(f"the counts were made with another codec ({counts.codec_hash}, codec {h})")
        return counts

    def describe(self) -> str:
        c = self.cfg
        how = f"beam search, {c['beams']} beams" if c["mode"] == "beam" else f"sampling, {c['chains']} chains"
        return (f"{self.lik.describe()}; {how}, top-{c['topk']} of each prior, {self.levels} levels decoded; "
                f"selection {c['select']}{', mask' if c['mask'] else ''}"
                + (f"; codec {self.codec_label}" if self.codec_label else ""))

    # ------------------------------------------------------------------ running
    @torch.inference_mode()
    def run(self, mix: torch.Tensor):
        """mix (n, 1, T) at 22050 Hz -> (est (n, N, 2, T) of every row, score (n, N)); timings in last_timing."""
        if mix.dim() != 3 or mix.shape[1] != 1:
            raise ConfigError(f"expected a mono mixture (n, 1, T), got {tuple(mix.shape)}")
        n, _, T = mix.shape
        if T < self.hop:
            raise InputError(f"the mixture is {T} samples long, shorter than one codec frame ({self.hop})")
        c = self.cfg
        per = int(c["beams"] if c["mode"] == "beam" else c["chains"])
        t0 = time.perf_counter()
        mix = mix.float().cpu()
        ctx = MixContext.from_mixture(self.codec, mix, per)
        frames = ctx.codes.shape[-1]
        t1 = time.perf_counter()
        res = search(self.priors, self.lik, ctx, frames, n, per, mode=c["mode"], topk=int(c["topk"]),
                     temperature=float(c["temperature"]), seed=c["seed"])
        t2 = time.perf_counter()
        codes = torch.cat([res.codes_b, res.codes_d])                               # (2R, K, F)
        wav = self.codec.decode(codes)[..., :T]                                      # (2R, 1, T)
        R = n * per
        est = torch.stack([wav[:R, 0], wav[R:, 0]], 1).view(n, per, 2, T)
        self.last_timing = {"encode_s": t1 - t0, "search_s": t2 - t1, "decode_s": time.perf_counter() - t2}
        return est, res.score.view(n, per)

    def choose(self, est, score, mix, how: str | None = None, use_mask: bool | None = None) -> torch.Tensor:
        """One (n, 2, T) estimate per chunk from run()'s rows by a non-oracle selection."""
        how = how or self.cfg["select"]
        use_mask = self.cfg["mask"] if use_mask is None else use_mask
        return sel.choose(how, est, mix[:, 0].float(), score, self.codec, use_mask, MIX_GAIN)

    def separate(self, mix: torch.Tensor, refs: torch.Tensor | None = None, sample_rate: int | None = None):
        """mix (n, 1, T) (or (T,), (C, T), (n, C, T) at `sample_rate`: downmixed and resampled) -> (n, 2, T) bass and
        drums at the mixture's rate, scaled so that mix = 0.5 (bass + drums)."""
        x = torch.as_tensor(mix).float()
        x = x[None, None] if x.dim() == 1 else (x[None] if x.dim() == 2 else x)
        x = x.mean(1, keepdim=True)
        sr = int(sample_rate or self.sample_rate)
        if sr != self.sample_rate:
            x = _resample(x, sr, self.sample_rate)
        t0 = time.perf_counter()
        est, score = self.run(x)
        out = self.choose(est, score, x)
        self.last_timing["total_s"] = time.perf_counter() - t0
        if sr != self.sample_rate:
            out = _resample(out, self.sample_rate, sr)[..., :torch.as_tensor(mix).shape[-1]]
        return out.to(mix.device) if isinstance(mix, torch.Tensor) else out


def _resample(x: torch.Tensor, sr_in: int, sr_out: int) -> torch.Tensor:
    from ...audio import resample
    y = resample(x.reshape(-1, x.shape[-1]).numpy().T, sr_in, sr_out)
    return torch.from_numpy(y.T.copy()).float().view(*x.shape[:-1], -1)


def _factory(method: str):
    def make(model=None, device: str = "cpu", **opts):
        return BayesianSeparator(method, codec=model, device=device, **opts)
    return make


lq_vae, lass, hybrid = _factory("lq-vae"), _factory("lass"), _factory("hybrid")
