"""HTDemucs and (waveform) Demucs as latentmix separators: the model-file format, the 'supervised' method's
forward convention (mixture (B, 1, T) -> stems (B, 4, T)) and a Task for the one training loop.
"""
from __future__ import annotations

from torch import nn

from latentmix import SAMPLE_RATE, STEMS
from latentmix.errors import ConfigError
from latentmix.separation.apply import apply_chunked
from latentmix.separation.models.base import SeparatorBase, SeparatorOutput
from latentmix.train.tasks.separator import SeparatorTask

from . import require

# Sizes scaled to the CPU budget (the published HTDemucs has channels 48, 5 transformer layers, 42 M parameters;
# Demucs v3 channels 48/64, depth 6). Everything not listed is the package's published default.
PRESETS = {
    "htdemucs": dict(channels=24, depth=4, nfft=4096, t_layers=2, t_heads=8, bottom_channels=0, segment=2),
    "demucs": dict(channels=48, depth=5, resample=False, lstm_layers=0, segment=2),
}
# Demucs's published training loss: L1 on the waveform of every stem (train.weights; unlisted terms weigh 1)
WEIGHTS = {"l1": 1.0, "mrstft": 0.0, "sisdr": 0.0}


class PeerSeparator(SeparatorBase, nn.Module):
    """A demucs-package network behind latentmix's separator interface; config = {arch: 'peer', net: 'htdemucs'
    | 'demucs', kwargs: constructor overrides, segment_seconds}. Mono in, 4 mono stems out; the waveform loss
    terms (weighted by the task's train.weights)."""

    def __init__(self, arch: str = "peer", net: str = "htdemucs", kwargs: dict | None = None,
                 segment_seconds: float = 2.0, stems=STEMS, sample_rate: int = SAMPLE_RATE):
        super().__init__()
        if net not in PRESETS:
            raise ConfigError(f"unknown peer separator '{net}' (known: {', '.join(PRESETS)})")
        kw = {**PRESETS[net], **(kwargs or {})}
        self.config = dict(arch=arch, net=net, kwargs=kw, segment_seconds=float(segment_seconds),
                           stems=list(stems), sample_rate=int(sample_rate))
        require("demucs")
        if net == "htdemucs":
            from demucs.htdemucs import HTDemucs as cls
        else:
            from demucs.demucs import Demucs as cls
        self.net = cls(sources=list(stems), audio_channels=1, samplerate=int(sample_rate), **kw)

    def _net(self, mix):
        return self.net(mix)[:, :, 0]           # (B, S, 1, T) -> (B, S, T)

    @property
    def hop_multiple(self) -> int:
        """HTDemucs: its STFT hop (nfft / 4), so that segments keep its frame grid; Demucs: 1."""
        return int(self.config["kwargs"].get("nfft", 4096)) // 4 if self.config["net"] == "htdemucs" else 1

    def forward(self, mix, targets=None, terms=None) -> SeparatorOutput:
        """mix (B, 1, T) -> SeparatorOutput(stems (B, S, T), waveform loss terms given targets, {}).

        HTDemucs at inference takes at most its training segment (its transformer is sized to it), so longer
        input goes through latentmix.separation.apply in hop-aligned segments, cross-faded (overlap 0.25)."""
        seg = self.segment_samples
        if not self.training and self.config["net"] == "htdemucs" and mix.shape[-1] > seg:
            y = apply_chunked(self._net, mix, seg, 0.25, self.hop_multiple, num_outputs=len(self.stems))
        else:
            y = self._net(mix)
        return self.output(y, targets, terms)


class PeerSeparatorTask(SeparatorTask):
    """latentmix's separator task (same windows, augmentation, validation) with a peer network."""

    def build_model(self):
        cfg = dict(self.model_config)
        cfg.pop("arch", None)
        return self.checked(PeerSeparator(**cfg))


def peer_separator_config(net: str, **train) -> dict:
    """A full training config for `net`, sharing latentmix's separator data settings (configs/separator/spec.yaml)
    except the optimiser, which follows Demucs (Adam lr 3e-4, betas (0.9, 0.999), no weight decay)."""
    t = dict(steps=700, batch_size=8, segment_seconds=2.0, val_segment_seconds=4.0, remix_p=0.3, lr=3e-4,
             betas=[0.9, 0.999], weight_decay=0.0, grad_clip=5.0, lr_schedule="cosine", warmup_steps=20,
             lr_min_ratio=0.05, log_every=25, val_every=100, val_items=32, ckpt_every=100, seed=0,
             effects_p=0.0, extra_data=[])     # the data settings latentmix's presets have (settable with --set)
    t.update(train)
    t.setdefault("weights", dict(WEIGHTS))
    return {"model": {"arch": "peer", "net": net, "segment_seconds": 2.0}, "train": t}
