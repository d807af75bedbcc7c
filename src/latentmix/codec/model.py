"""The codec: a SEANet/DAC-style convolutional encoder, a quantizer bottleneck and a mirrored decoder.

Everything the decoder sees goes through the bottleneck (no encoder->decoder skips). Long audio is encoded and
decoded in chunks with receptive-field margins, so chunked codes equal whole-file codes.
"""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from .. import SAMPLE_RATE
from ..checkpoint import ModelIO
from ..errors import ConfigError
from ..nn.layers import (Conv1d, DecoderBlock, EncoderBlock, make_activation, receptive_field,
                         receptive_field_frames)
from .base import CodecModel
from .quantize import build_quantizer


def _block_dilations(dilations, n_blocks: int) -> list[tuple]:
    """`dilations` is one list for every block, or one list per block (outermost first)."""
    dilations = list(dilations)
    if dilations and all(isinstance(d, (list, tuple)) for d in dilations):
        if len(dilations) != n_blocks:
            raise ConfigError(f"per-block dilations need {n_blocks} lists, got {len(dilations)}")
        return [tuple(int(x) for x in d) for d in dilations]
    return [tuple(int(x) for x in dilations)] * n_blocks


def conv_encoder(in_channels: int, widths, strides, latent_dim: int, dilations, kernel: int = 7,
                 causal: bool = False, activation: str = "snake") -> nn.Sequential:
    """The conv codec's SEANet/DAC encoder: (B, in_channels, T) -> (B, latent_dim, T / prod(strides)).

    widths[i] is the width before stride i (len(strides) + 1 entries); `dilations` is one list for every block
    or one list per block. Codec builds its encoder with it, and so does the codec separator.
    """
    dils = _block_dilations(dilations, len(strides))
    kw = dict(kernel=kernel, causal=causal, activation=activation)
    enc = [Conv1d(in_channels, widths[0], 7, causal=causal)]
    enc += [EncoderBlock(widths[i], widths[i + 1], s, dils[i], **kw) for i, s in enumerate(strides)]
    enc += [make_activation(activation, widths[-1]), Conv1d(widths[-1], latent_dim, 3, causal=causal)]
    return nn.Sequential(*enc)


def conv_decoder(latent_dim: int, widths, strides, out_channels: int, dilations, kernel: int = 7,
                 causal: bool = False, activation: str = "snake") -> nn.Sequential:
    """The mirror of `conv_encoder` (same widths, strides, dilations): (B, latent_dim, F) ->
    (B, out_channels, F * prod(strides))."""
    dils = _block_dilations(dilations, len(strides))
    kw = dict(kernel=kernel, causal=causal, activation=activation)
    dec = [Conv1d(latent_dim, widths[-1], 7, causal=causal)]
    dec += [DecoderBlock(widths[i + 1], widths[i], s, dils[i], **kw) for i, s in reversed(list(enumerate(strides)))]
    dec += [make_activation(activation, widths[0]), Conv1d(widths[0], out_channels, 7, causal=causal)]
    return nn.Sequential(*dec)


def inference_cache():
    """Cache weight-norm weights while gradients are off (inference): each weight is computed once."""
    return parametrize.cached() if not torch.is_grad_enabled() else contextlib.nullcontext()


DEFAULT_QUANTIZER = {"type": "rvq", "num_codebooks": 8, "codebook_size": 1024, "quantizer_dropout": 0.5}


class Codec(nn.Module, ModelIO, CodecModel):
    """Audio (B, channels, T) <-> codes (B, K, F) with F = ceil(T / hop_length), hop = prod(strides); implements
    the codec contract (codec/base.py: bitrate, chunked inference, the .lmxc header).

    `dilations` is one list for every block or one list per block (an empty list: no residual units there);
    `quantizer` is the dict given to `codec.quantize.build_quantizer` (type rvq | vq | som | vae | energy, ...);
    `spectral` holds the spectral architecture's options. Every key is documented in docs/codec_config.md.
    """

    KIND = "codec"

    def __init__(self, sample_rate: int = SAMPLE_RATE, channels: int = 1, base_channels: int = 16,
                 strides=(2, 4, 5, 8), latent_dim: int = 64, max_channels: int = 512, dilations=(1, 3, 9),
                 residual_kernel: int = 7, quantizer: dict | None = None, causal: bool = False,
                 activation: str = "snake", architecture: str = "conv", spectral: dict | None = None):
        super().__init__()
        quantizer = dict(quantizer or DEFAULT_QUANTIZER)
        self.config = dict(sample_rate=sample_rate, channels=channels, base_channels=base_channels,
                           strides=list(strides), latent_dim=latent_dim, max_channels=max_channels,
                           dilations=[list(d) if isinstance(d, (list, tuple)) else d for d in dilations],
                           residual_kernel=residual_kernel, quantizer=quantizer, causal=causal,
                           activation=activation, architecture=architecture)
        if not strides or any(int(s) < 1 for s in strides):
            raise ConfigError(f"codec strides must be positive integers, got {strides}")
        self.sample_rate, self.channels, self.strides = sample_rate, channels, [int(s) for s in strides]
        self.architecture = architecture
        if architecture == "spectral":
            self._build_spectral(dict(spectral or {}), latent_dim, quantizer)
            return
        if architecture != "conv":
            raise ConfigError(f"unknown codec architecture '{architecture}' (conv or spectral)")
        widths = [min(base_channels * 2 ** i, max_channels) for i in range(len(strides) + 1)]
        kw = dict(kernel=residual_kernel, causal=causal, activation=activation)
        self.encoder = conv_encoder(channels, widths, self.strides, latent_dim, dilations, **kw)
        self.quantizer = build_quantizer(latent_dim, quantizer)
        self.decoder = conv_decoder(latent_dim, widths, self.strides, channels, dilations, **kw)
        self.receptive_field = receptive_field(self.encoder)            # samples
        self.decoder_receptive_field = receptive_field_frames(self.decoder)  # frames

    def _build_spectral(self, spec: dict, latent_dim: int, quantizer: dict) -> None:
        """Codec v2: STFT + ConvNeXt encoder, ConvNeXt + iSTFT decoder (codec/spectral.py); hop = prod(strides)."""
        from .spectral import ISTFTDecoder, STFTEncoder
        unknown = set(spec) - {"dim", "encoder_depth", "decoder_depth", "mult", "n_fft", "multires", "encoder_input"}
        if unknown:
            raise ConfigError(f"unknown spectral codec option(s) {sorted(unknown)}")
        hop = self.hop_length
        enc_in = spec.pop("encoder_input", "complex")
        if enc_in not in ("complex", "magnitude"):
            raise ConfigError(f"spectral.encoder_input must be 'complex' or 'magnitude', got {enc_in!r}")
        spec = {"dim": 192, "encoder_depth": 4, "decoder_depth": 8, "mult": 3, "n_fft": 4 * hop, **spec}
        if any(int(spec[k]) < (0 if k == "multires" else 1) for k in spec):
            raise ConfigError(f"spectral codec options must be positive integers (multires >= 0), got {spec}")
        # the default is not written, so that files (and codec hashes) from before the option stay the same
        self.config["spectral"] = spec if enc_in == "complex" else {**spec, "encoder_input": enc_in}
        kw = dict(channels=self.channels, hop=hop, n_fft=int(spec["n_fft"]), dim=int(spec["dim"]),
                  latent_dim=latent_dim, mult=int(spec["mult"]), multires=int(spec.get("multires", 0)))
        self.encoder = STFTEncoder(depth=int(spec["encoder_depth"]), magnitude=enc_in == "magnitude", **kw)
        self.quantizer = build_quantizer(latent_dim, quantizer)
        self.decoder = ISTFTDecoder(depth=int(spec["decoder_depth"]), **kw)
        self.receptive_field = self.encoder.receptive_field()
        self.decoder_receptive_field = self.decoder.receptive_field_frames()

    # ------------------------------------------------------------------ properties
    @property
    def hop_length(self) -> int:
        return math.prod(self.strides)

    @property
    def num_codebooks(self) -> int:
        return self.quantizer.num_codebooks

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def is_continuous(self) -> bool:
        return bool(self.quantizer.continuous)

    # ------------------------------------------------------------------ core (pad, frame_rate, bitrate: CodecModel)
    def forward(self, wav: torch.Tensor, num_codebooks: int | None = None) -> dict:
        """wav (B, C, T) -> dict(audio (B, C, T), z (B, D, F), z_q (B, D, F), codes (B, n, F) | None,
        losses {name: scalar}, stats {name: scalar})."""
        length = wav.shape[-1]
        z = self.encoder(self.pad(wav))
        q = self.quantizer(z, num_codebooks)
        audio = self.decoder(q.z_q)[..., :length]
        return {"audio": audio, "z": z, "z_q": q.z_q, "codes": q.codes, "losses": q.losses, "stats": q.stats}

    def encode_latents(self, wav: torch.Tensor) -> torch.Tensor:
        """wav (B, C, T) -> encoder latents z (B, D, ceil(T / hop)); for the VAE, its posterior mean."""
        z = self.encoder(self.pad(wav))
        return self.quantizer.level_latents(z)[0] if self.is_continuous else z

    def decode_latents(self, z_q: torch.Tensor) -> torch.Tensor:
        """z_q (B, D, F) -> wav (B, C, F * hop)."""
        return self.decoder(z_q)

    def encode(self, wav: torch.Tensor, num_codebooks: int | None = None) -> torch.Tensor:
        """wav (B, C, T) -> codes (B, n, ceil(T / hop)) int64 (never updates codebooks)."""
        if num_codebooks is not None and not self.is_continuous:
            self.levels(num_codebooks)
        with inference_cache():
            return self.quantizer.encode(self.encoder(self.pad(wav)), num_codebooks)

    def from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, K, F) -> z_q (B, D, F); K may be below num_codebooks."""
        return self.quantizer.decode(codes)

    def decode(self, codes: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """codes (B, K, F) -> wav (B, C, F * hop), or its first `length` samples (the encoded signal's length)."""
        with inference_cache():
            wav = self.decoder(self.from_codes(codes))
        return wav if length is None else wav[..., :int(length)]

    @classmethod
    def from_pretrained(cls, name: str = "codec", device="cpu") -> Codec:
        """The shipped codec by name (`latentmix models`) or a model file, ready for inference: eval mode and
        frozen (its outputs never require grad; call `requires_grad_(True)` to fine-tune)."""
        from ..pretrained.registry import resolve_model, resolve_name
        path = resolve_name(name, "codec") if name in ("codec", "default") else resolve_model(name, "codec")
        return cls.load(path, device).requires_grad_(False)

    # ------------------------------------------------------------------ chunked inference (CodecModel)
    def context_frames(self) -> tuple[int, int]:
        """Margins in frames (encode, decode) that make chunked results equal whole-signal results."""
        bottleneck = self.quantizer.context_frames()
        return (math.ceil(self.receptive_field / self.hop_length) + 1 + bottleneck,
                self.decoder_receptive_field + 1)

    def inference_context(self):
        return inference_cache()
