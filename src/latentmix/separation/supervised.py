"""The 'supervised' separation method: a trained separator file run chunk by chunk on long audio.

Registers itself with the method registry on import; `build_separator` / `load_separator` live in
separation.models and are re-exported here (see that package for the three architectures).
"""
from __future__ import annotations

import torch

from ..pretrained.registry import default_separator_path, resolve_model
from .models import ARCHS, build_separator, load_separator
from .stitch import apply_chunked


class SupervisedSeparator:
    """A trained separator as a method: separate(mix (n, 1, T), refs=None) -> (n, 4, T) on the input's device.

    Inputs longer than `segment_seconds` (the model's config by default) are cut into chunks with `overlap`
    and cross-faded by stitch.apply_chunked; shorter ones run whole; all under torch.inference_mode.
    """

    name = "supervised"
    needs_references = False

    def __init__(self, model=None, device: str = "cpu", segment_seconds: float | None = None,
                 overlap: float = 0.25, batch_size: int = 1, **_ignored):
        """model: a separator file, a registered name, None (the shipped default) or a loaded separator module
        (anything with the separator forward convention, `stems`, `sample_rate` and `config`)."""
        torch.set_flush_denormal(True)   # denormal mask products on quiet passages slow CPU kernels 3-10x
        self.device = torch.device(device)
        if isinstance(model, torch.nn.Module):
            self.path = getattr(model, "path", None) or f"<{type(model).__name__} in memory>"
            self.model = model.to(self.device).eval()
        else:
            self.path = resolve_model(None if model in ("supervised",) else model, "separator")
            self.model = load_separator(self.path, device=self.device)
        self.stems = self.model.stems
        seg = float(segment_seconds or self.model.config.get("segment_seconds", 6.0))
        self.segment_seconds = seg
        self.segment = max(1, int(round(seg * self.model.sample_rate)))   # models pad to their hop internally
        self.overlap, self.batch_size = float(overlap), int(batch_size)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[0]

    def separate(self, mix: torch.Tensor, refs: torch.Tensor | None = None) -> torch.Tensor:
        dev = mix.device
        with torch.inference_mode():
            if mix.shape[-1] <= self.segment:      # one segment (e.g. a chunk from separate_long): run it whole
                return self.model(mix.to(self.device).float())[0].to(dev)
            y = apply_chunked(self._run, mix.to(self.device).float(), self.segment, self.overlap,
                              num_outputs=len(self.stems), batch_size=self.batch_size)
        return y.to(dev)


def _register() -> None:
    try:
        from .registry import register_method
    except ImportError:          # the registry is optional for users of the models alone
        return
    register_method("supervised", SupervisedSeparator)


_register()

__all__ = ["ARCHS", "SupervisedSeparator", "build_separator", "default_separator_path", "load_separator"]
