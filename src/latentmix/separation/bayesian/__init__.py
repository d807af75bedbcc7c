"""Bayesian separation in the code space (issue #18): two per-stem code priors, a likelihood tying the mixture's
codes to the sources' codes, and a batched search, with no supervised separator.

likelihood.py (LQ-VAE's code-sum Gaussian, the latent partial-sum Gaussian, LASS's smoothed counts), counts.py
(sparse resumable triplet counts), search.py (ancestral sampling and beam search with both priors' KV caches),
select.py (non-oracle selection and the mixture mask), method.py (BayesianSeparator, the registered methods).
"""
from .method import PRESETS, SEED_PRESETS, BayesianSeparator

__all__ = ["BayesianSeparator", "PRESETS", "SEED_PRESETS"]
