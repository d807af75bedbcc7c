"""EnCodec (the `encodec` package's SEANet + LSTM encoder/decoder and EMA residual VQ) as a latentmix codec:
model file, the codec contract (latentmix.codec.base.CodecModel: encode/decode/bitrate/chunking/.lmxc header, as
latentmix.codec.Codec) and a Task with EnCodec's published losses.
"""
from __future__ import annotations

import math
import random
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from latentmix import SAMPLE_RATE
from latentmix.audio import mel_spectrogram
from latentmix.checkpoint import ModelIO
from latentmix.codec.base import CodecModel
from latentmix.train.tasks.codec import CodecTask

from . import require

# Scaled to latentmix's default codec: hop 320 (ratios 8·5·4·2) at 22050 Hz = 68.9 frames/s, 12 x 1024 codes
# (8.27 kbps; 9 levels = 6.2 kbps), n_filters 16 (EnCodec: 32), a 2-layer LSTM as published, non-causal.
PRESET = dict(n_filters=16, dimension=128, ratios=[8, 5, 4, 2], lstm=2, n_q=12, bins=1024, causal=False)
# Bandwidths EnCodec trains on, one drawn per batch (here as numbers of codebooks: 1.38 / 2.76 / 6.2 / 8.27 kbps).
TRAIN_LEVELS = (2, 4, 9, 12)


class PeerCodec(nn.Module, ModelIO, CodecModel):
    """encodec.EncodecModel's encoder, quantizer and decoder; audio (B, 1, T) <-> codes (B, K, frames).

    Chunked inference (the contract's encode_chunked / decode_chunked): with the LSTM (lstm > 0, as published)
    the context is unbounded, so a chunked call takes the whole signal as one window; without it the margins
    are the SEANet convolutions' receptive fields."""

    KIND = "peer-codec"
    channels = 1

    def __init__(self, sample_rate: int = SAMPLE_RATE, **kwargs):
        super().__init__()
        kw = {**PRESET, **kwargs}
        self.config = dict(sample_rate=int(sample_rate), **kw)
        require("encodec")
        from encodec import modules as m
        from encodec import quantization as qt
        net = dict(channels=1, dimension=kw["dimension"], n_filters=kw["n_filters"], ratios=list(kw["ratios"]),
                   causal=kw["causal"], lstm=kw["lstm"], norm="weight_norm")
        with warnings.catch_warnings():     # encodec uses the deprecated torch.nn.utils.weight_norm
            warnings.simplefilter("ignore", FutureWarning)
            self.encoder = m.SEANetEncoder(**net)
            self.decoder = m.SEANetDecoder(**net)
        self.quantizer = qt.ResidualVectorQuantizer(dimension=kw["dimension"], n_q=kw["n_q"], bins=kw["bins"])
        self.sample_rate = int(sample_rate)
        self.hop_length = int(math.prod(kw["ratios"]))
        self.num_codebooks, self.codebook_size = int(kw["n_q"]), int(kw["bins"])
        self._context = None if int(kw["lstm"]) else _conv_context(self.encoder, self.decoder, self.hop_length)

    def forward(self, wav: torch.Tensor, num_codebooks: int | None = None) -> dict:
        """Training forward: {'audio', 'losses': {'vq/commitment'}, 'stats': {}} (EMA codebooks update). Levels
        beyond num_codebooks mean all of them (a TRAIN_LEVELS draw on a smaller model)."""
        z = self.encoder(self.pad(wav))
        q, _, commit = self.quantizer.vq(z, n_q=num_codebooks or self.num_codebooks)
        y = self.decoder(q)[..., :wav.shape[-1]]
        return {"audio": y, "losses": {"vq/commitment": commit.mean()}, "stats": {}}

    @torch.no_grad()
    def encode(self, wav: torch.Tensor, num_codebooks: int | None = None) -> torch.Tensor:
        codes = self.quantizer.vq.encode(self.encoder(self.pad(wav)), n_q=self.levels(num_codebooks))  # (K, B, F)
        return codes.transpose(0, 1)

    @torch.no_grad()
    def from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.shape[1] > self.num_codebooks:
            raise ValueError(f"codes have {codes.shape[1]} codebooks, the codec has {self.num_codebooks}")
        return self.quantizer.vq.decode(codes.transpose(0, 1))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.from_codes(codes))

    def context_frames(self) -> tuple[int, int] | None:
        return self._context


def _conv_context(encoder: nn.Module, decoder: nn.Module, hop: int) -> tuple[int, int]:
    """Chunking margins (encode, decode) in frames of a convolution-only SEANet pair: the receptive fields, an
    upper bound that sums every convolution (residual branches included) in registration (= data-flow) order."""
    rf, jump = 1, 1
    for mod in encoder.modules():
        if isinstance(mod, nn.Conv1d):
            rf += (mod.kernel_size[0] - 1) * mod.dilation[0] * jump
            jump *= mod.stride[0]
    frames, jump = 1.0, 1.0
    for mod in decoder.modules():
        if isinstance(mod, nn.ConvTranspose1d):
            frames += (math.ceil(mod.kernel_size[0] / mod.stride[0]) - 1) * jump
            jump /= mod.stride[0]
        elif isinstance(mod, nn.Conv1d):
            frames += (mod.kernel_size[0] - 1) * mod.dilation[0] * jump
    return math.ceil(rf / hop) + 1, math.ceil(frames) + 1


def encodec_mel_loss(x: torch.Tensor, y: torch.Tensor, sr: int = SAMPLE_RATE, n_mels: int = 64) -> torch.Tensor:
    """EnCodec's frequency loss (Défossez et al. 2022, eq. 2 with alpha_i = 1): over mel spectrograms with
    windows 2^5..2^11 (hop window/4, 64 bins), mean of L1 + L2 (mean squared) distances between linear mels."""
    total, used = 0.0, 0
    for i in range(5, 12):
        w = 2 ** i
        if w // 2 >= x.shape[-1]:
            continue
        mx, my = mel_spectrogram(x, w, w // 4, n_mels, sr), mel_spectrogram(y, w, w // 4, n_mels, sr)
        total = total + F.l1_loss(mx, my) + F.mse_loss(mx, my)
        used += 1
    return total / max(used, 1)


class PeerCodecTask(CodecTask):
    """latentmix's codec task (same windows, stem subsets, validation, export) with EnCodec and its losses:
    lambda_t 0.1 (waveform L1), lambda_f 1 (multi-scale mel), lambda_w 1 (commitment), one bandwidth per batch.
    EnCodec's adversary (MS-STFT discriminator, lambda_g 3, lambda_feat 3) is off, as in latentmix's CPU preset."""

    def build_model(self):
        return PeerCodec.from_config(self.config["model"])

    def build_discriminator(self):
        return None

    def _code_sum(self, model, max_items: int) -> float:
        """The level-0 code-sum agreement reads latentmix's quantizer levels (codec/linearity.py), which EnCodec's
        quantizer does not have: not measured for the peer."""
        return float("nan")

    def training_step(self, model, batch: torch.Tensor, step: int, disc=None) -> dict:
        w = self.weights
        levels = random.Random(self.seed * 7919 + step).choice(TRAIN_LEVELS)
        out = model(batch, levels)
        core = getattr(model, "module", model)
        parts = {"rec/l1": F.l1_loss(out["audio"], batch),
                 "rec/mel": encodec_mel_loss(out["audio"], batch, core.sample_rate),
                 "vq/commitment": out["losses"]["vq/commitment"]}
        total = (float(w.get("l1", 0.1)) * parts["rec/l1"] + float(w.get("mel", 1.0)) * parts["rec/mel"]
                 + float(w.get("commitment", 1.0)) * parts["vq/commitment"])
        return {"loss": total, **parts, "levels": float(levels), "out": out["audio"]}


def peer_codec_config(**train) -> dict:
    """Training config: latentmix's codec data settings (configs/codec/cpu_small.yaml) with EnCodec's optimiser
    (Adam lr 3e-4, betas (0.5, 0.9)) and loss weights."""
    t = dict(steps=4000, batch_size=8, segment_seconds=0.75, isolated_stem_prob=0.3, lr=3e-4, betas=[0.5, 0.9],
             weight_decay=0.0, grad_clip=1.0, weights={"l1": 0.1, "mel": 1.0, "commitment": 1.0},
             adversarial=False, val_seconds=4.0, log_every=50, val_every=500, ckpt_every=500)
    t.update(train)
    return {"model": dict(PRESET), "train": t}
