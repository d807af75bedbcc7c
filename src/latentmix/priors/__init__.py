"""Autoregressive priors over codec codes: a cached decoder-only transformer with codebook patterns, the
RQ-Transformer, and sampling (temperature, top-k/p, classifier-free guidance, continuation)."""
from .patterns import PATTERNS, Pattern
from .rq_transformer import RQTransformer
from .sampling import generate, sample
from .transformer import CodeTransformer, KVCache

__all__ = ["PATTERNS", "Pattern", "CodeTransformer", "KVCache", "RQTransformer", "generate", "sample"]
