"""The 'supervised' separation method: a trained separator file run segment by segment on long audio.

`build_separator` / `load_separator` live in separation.models and are re-exported here (see that package for
the three architectures); long inputs go through separation.apply, the one chunked-inference path.
"""
from __future__ import annotations

import torch

from ..pretrained.registry import default_separator_path, resolve_model
from .apply import segment_length, separate_long
from .models import ARCHS, build_separator, load_separator


class SupervisedSeparator:
    """A trained separator as a method: separate(mix (n, 1, T), refs=None) -> (n, 4, T) on the input's device.

    Inputs longer than one segment (the model's `segment_seconds` by default, aligned to its hop) go through
    separation.apply.separate_long with `overlap`; shorter ones run whole; all under torch.inference_mode.
    """

    name = "supervised"
    needs_references = False

    def __init__(self, model=None, device: str = "cpu", segment_seconds: float | None = None,
                 overlap: float = 0.25, batch_size: int = 1, **_ignored):
        """model: a separator file, a registered name, None (the shipped default) or a loaded separator module
        (anything with the separator forward convention, `stems`, `sample_rate`, `hop_multiple` and `config`)."""
        torch.set_flush_denormal(True)   # denormal mask products on quiet passages slow CPU kernels 3-10x
        self.device = torch.device(device)
        if isinstance(model, torch.nn.Module):
            self.path = getattr(model, "path", None) or f"<{type(model).__name__} in memory>"
            self.model = model.to(self.device).eval()
        else:
            self.path = resolve_model(None if model in ("supervised",) else model, "separator")
            self.model = load_separator(self.path, device=self.device)
        self.stems = self.model.stems
        self.sample_rate = self.model.sample_rate
        self.hop = int(getattr(self.model, "hop_multiple", 1))
        self.segment_seconds = float(segment_seconds or self.model.config.get("segment_seconds", 6.0))
        self.segment = segment_length(self.segment_seconds, self.sample_rate, self.hop)
        self.overlap, self.batch_size = float(overlap), int(batch_size)

    def separate(self, mix: torch.Tensor, refs: torch.Tensor | None = None) -> torch.Tensor:
        """mix (n, 1, T) -> (n, S, T): whole when it fits this method's segment, else through separate_long."""
        if mix.shape[-1] > self.segment:
            return separate_long(self, mix, None, self.segment_seconds, self.overlap, self.sample_rate,
                                 self.batch_size)
        return self.separate_segment(mix)

    def separate_segment(self, mix: torch.Tensor, refs: torch.Tensor | None = None) -> torch.Tensor:
        """One segment, whole, whatever its length: separate_long's calls, so that the segment it chose (a
        user's --segment longer than the model's) is the one the model sees, not cut again here."""
        with torch.inference_mode():
            return self.model(mix.to(self.device).float()).stems.to(mix.device)


__all__ = ["ARCHS", "SupervisedSeparator", "build_separator", "default_separator_path", "load_separator"]
