"""Band-split spectrogram-mask separator (arch 'spec'): the design that wins on 2 CPU cores.

Why this design: a mask over the mixture STFT only has to *choose* energy, not synthesise a waveform, so a small
network gets within reach of the ideal-ratio-mask ceiling; the band split (BSRNN-style, Luo & Yu 2023) turns
the 1025 bins of a 2048-point STFT into 22 band tokens per frame so the sequence models stay cheap; masks are a
softmax over the 4 stems, so the estimates sum exactly to the mixture (the MSDM mixture is a sum). The spec.yaml
preset now uses n_fft 2048 / hop 512 (1.68 M parameters): a same-budget Demucs beat the 1024-point version on
bass, whose mask ceiling is set by frequency resolution; the longer STFT halves the frames and trains 1.7x faster
per step. With n_fft 1024 (1.0 M parameters, dilated-conv time model) it cost ~1.25 GFLOP per audio second (0.93
in convs/linears/FFTs + 0.31 in the band GRUs) and ran ~66x real time on 2 lightly loaded threads (30 s of audio,
inference_mode; the all-GRU variant ~38x). A waveform codec separator of the same size costs about as many
FLOPs but runs 4-10x slower on CPU (small-channel convolutions at 22 kHz are memory-bound).
Caveat: on an oversubscribed CPU (load above the core count) 2 torch threads stall at every parallel region;
1 thread then ran 22x real time where 2 threads ran 1x.

mixture (B, 1, T) -> STFT (B, F, N) -> log|X| per band -> band tokens (B, K, N, C) -> [time model over N per
band (dilated convs or BiGRU), bidirectional GRU over K per frame] x layers -> per-band mask head -> softmax over
stems (B, 4, F, N) -> masks * X -> iSTFT -> stems (B, 4, T).

low_fft (issue #19, off by default): bass lives below ~500 Hz, where a 2048-point STFT has 10.8 Hz bins and a
mask's ceiling is set by frequency resolution. With low_fft = 4096, the bins of a second, longer STFT below
low_hz join as extra band tokens; their masks separate that band first (iSTFT at low_fft), and the main masks
then separate what is left (the mixture minus the low band's estimates), so the stems still sum to the mixture
exactly.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ... import SAMPLE_RATE, STEMS
from ...audio import istft, stft
from ...errors import ConfigError, ModelFileError
from .base import SeparatorBase, SeparatorOutput

# (upper edge in Hz, band width in Hz): narrow bands where the bass and the harmonics live, wide ones above.
DEFAULT_BAND_PLAN = [[1000, 125], [4000, 375], [8000, 1000], [11025, 1525]]


def band_edges(n_fft: int, sr: int, plan) -> list[int]:
    """Bin edges [0, e1, ..., F] partitioning the n_fft//2+1 bins into bands following `plan` (Hz, width)."""
    n_bins = n_fft // 2 + 1
    hz_per_bin = sr / n_fft
    edges, lo = [0], 0.0
    for hi, width in plan:
        while lo + 1e-6 < hi:
            lo = min(lo + width, hi)
            b = min(n_bins, int(round(lo / hz_per_bin)))
            if b > edges[-1]:
                edges.append(b)
    if edges[-1] < n_bins:
        if n_bins - edges[-1] < 4 and len(edges) > 1:
            edges[-1] = n_bins
        else:
            edges.append(n_bins)
    return edges


class BandLinear(nn.Module):
    """One linear map per band, batched: (B, K, N, i) -> (B, K, N, o) with weights (K, i, o)."""

    def __init__(self, bands: int, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(bands, d_in, d_out) / math.sqrt(d_in))
        self.bias = nn.Parameter(torch.zeros(bands, 1, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bkni,kio->bkno", x, self.weight) + self.bias


class TimeConv(nn.Module):
    """Residual dilated depthwise-separable conv stack over frames, shared by all bands: (M, C, N) -> (M, C, N)."""

    def __init__(self, channels: int, dilations=(1, 2, 4, 8), kernel: int = 3):
        super().__init__()
        self.blocks = nn.ModuleList()
        for d in dilations:
            self.blocks.append(nn.Sequential(
                nn.GroupNorm(1, channels),
                nn.Conv1d(channels, channels, kernel, dilation=d, padding=d * (kernel - 1) // 2, groups=channels),
                nn.Conv1d(channels, 2 * channels, 1), nn.GELU(), nn.Conv1d(2 * channels, channels, 1)))

    def forward(self, x):
        for b in self.blocks:
            x = x + b(x)
        return x


class RNNAxis(nn.Module):
    """Residual bidirectional GRU along one axis of (M, L, C) sequences: LayerNorm -> BiGRU -> Linear."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.rnn = nn.GRU(channels, hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden, channels)

    def forward(self, x):
        return x + self.proj(self.rnn(self.norm(x))[0])


class SpecSeparator(nn.Module, SeparatorBase):
    """Band-split mask separator. forward(mix (B, 1, T)) -> SeparatorOutput; see the module docstring.

    time_model: 'conv' (dilated conv stack over frames, the CPU default) or 'gru' (BiGRU over frames per band,
    the BSRNN choice). At 160 steps on the synthetic data they scored 5.71 / 5.84 dB SI-SDRi, but conv trained
    1.7x faster and is not slowed by thread oversubscription (GRU steps synchronise threads every frame).
    mask: 'softmax' (real masks summing to 1 over stems) or 'complex' (complex masks made mixture-consistent by
    adding (1 - sum_s M_s) / S to each, so the estimates still sum to the mixture).
    """

    def __init__(self, arch: str = "spec", n_fft: int = 1024, hop: int = 256, channels: int = 48,
                 hidden: int = 48, layers: int = 3, time_model: str = "conv", mask: str = "softmax",
                 band_plan=None, stems=STEMS, sample_rate: int = SAMPLE_RATE, segment_seconds: float = 6.0,
                 low_fft: int = 0, low_hz: float = 500.0, low_band_bins: int = 16):
        super().__init__()
        if arch != "spec":
            raise ConfigError(f"SpecSeparator got arch '{arch}'")
        if time_model not in ("gru", "conv") or mask not in ("softmax", "complex"):
            raise ConfigError(f"spec separator: time_model must be gru|conv and mask softmax|complex, "
                              f"got {time_model}/{mask}")
        band_plan = band_plan or DEFAULT_BAND_PLAN
        self.config = dict(arch=arch, n_fft=n_fft, hop=hop, channels=channels, hidden=hidden, layers=layers,
                           time_model=time_model, mask=mask, band_plan=band_plan, stems=list(stems),
                           sample_rate=sample_rate, segment_seconds=segment_seconds)
        self.n_fft, self.hop, self.n_stems = n_fft, hop, len(stems)
        self.hop_multiple = hop
        edges = band_edges(n_fft, sample_rate, band_plan)
        self.low_fft, self.low_bins = int(low_fft or 0), 0
        if self.low_fft:
            if self.low_fft <= n_fft or self.low_fft % hop or low_band_bins < 1:
                raise ConfigError(f"spec separator: low_fft must be a multiple of hop {hop} above n_fft {n_fft} "
                                  f"(got {low_fft}) and low_band_bins >= 1")
            self.low_bins = max(1, min(self.low_fft // 2, int(round(low_hz * self.low_fft / sample_rate))))
            F = edges[-1]                  # the low band's bins follow the main STFT's on one feature axis
            edges += [F + b for b in range(low_band_bins, self.low_bins, low_band_bins)] + [F + self.low_bins]
            self.config.update(low_fft=self.low_fft, low_hz=low_hz, low_band_bins=low_band_bins)
        widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
        K, W = len(widths), max(widths)
        self.n_bands, self.max_width, self.band_widths = K, W, widths
        # gather index (K, W) into the bin axis, padded entries point at bin 0 and are masked out
        idx = torch.zeros(K, W, dtype=torch.long)
        valid = torch.zeros(K, W)
        for k, (a, w) in enumerate(zip(edges[:-1], widths)):
            idx[k, :w] = torch.arange(a, a + w)
            valid[k, :w] = 1
        self.register_buffer("band_index", idx, persistent=False)
        self.register_buffer("band_valid", valid, persistent=False)
        self.n_bins = n_fft // 2 + 1
        self.n_feat = self.n_bins + self.low_bins
        n_mask = 2 if mask == "complex" else 1
        self.n_mask = n_mask
        self.inp = BandLinear(K, W, channels)
        self.inp_norm = nn.LayerNorm(channels)
        self.time = nn.ModuleList()
        self.band = nn.ModuleList()
        for _ in range(layers):
            self.time.append(RNNAxis(channels, hidden) if time_model == "gru" else TimeConv(channels))
            self.band.append(RNNAxis(channels, hidden))
        self.head_norm = nn.LayerNorm(channels)
        self.head1 = BandLinear(K, channels, 2 * channels)
        self.head2 = BandLinear(K, 2 * channels, self.n_stems * n_mask * W)

    def tensors_from_stems(self, tensors: dict, old_stems) -> dict:
        """A model file's tensors for another stem list (`--init` of a 5-stem model from a 4-stem file): every
        tensor but the mask head's is shared; the head keeps each stem the two lists have in common, and a new stem
        starts with zero weights and a low softmax logit (-3: about 1 % of each bin), so the fine-tune begins
        from the file's separation. ModelFileError if a stem of the file is not in this model's list."""
        old, new = list(old_stems), list(self.stems)
        missing = [s for s in old if s not in new]
        if missing:
            raise ModelFileError(f"the file's stem '{missing[0]}' is not one of this model's ({', '.join(new)})")
        out = dict(tensors)
        for name in ("head2.weight", "head2.bias"):
            t = tensors[name]
            t = t.reshape(*t.shape[:2], self.max_width, len(old), self.n_mask)
            fill = -3.0 if name.endswith("bias") and self.n_mask == 1 else 0.0
            cols = [t[..., old.index(s), :] if s in old else torch.full_like(t[..., 0, :], fill) for s in new]
            out[name] = torch.stack(cols, 3).reshape(*t.shape[:2], -1).contiguous()
        return out

    def tensors_with_new_layers(self, tensors: dict) -> dict:
        """A model file's tensors for this model when it has more layers than the file (`--init` of a deeper
        model): the file's layers come first, and each added layer starts as the identity (its residual blocks'
        output projections zero, everything else freshly initialised), so the fine-tune begins from the file's
        separation. ModelFileError when the file has more layers than this model."""
        have = {int(k.split(".")[1]) for k in tensors
                if k.startswith(("time.", "band.")) and k.split(".")[1].isdigit()}
        n_file = max(have) + 1 if have else 0
        if n_file > len(self.time):
            raise ModelFileError(f"the file has {n_file} layers, this model {len(self.time)}")
        out = dict(tensors)
        for name, t in self.state_dict().items():
            part = name.split(".")
            if part[0] in ("time", "band") and int(part[1]) >= n_file:
                last = (part[2] == "proj" if isinstance(self.time[0], RNNAxis) or part[0] == "band"
                        else part[2] == "blocks" and part[4] == "4")      # TimeConv block: norm dw pw gelu pw
                out[name] = torch.zeros_like(t) if last else t.clone()
        return out

    def tensors_widened(self, tensors: dict, seed: int = 0) -> dict:
        """A model file's tensors for this model when it is a whole multiple wider (channels and/or hidden) than
        the file (`--init` of a wider model, issue #19 item 4), as Net2WiderNet (Chen et al. 2016): every unit is
        repeated f times, and each weight that reads the repeated units is split among the copies in random shares
        that sum to the original, so the wider model computes the file's function exactly (LayerNorm and GroupNorm
        see f copies of the same values: the same statistics) while the copies get different gradients and drift
        apart. The shares come from a fixed seed, so runs widened from one file share their start (their weights
        can be averaged). Unchanged tensors come back as they were; ModelFileError when the widths do not divide."""
        C, H = int(self.inp_norm.weight.shape[0]), int(self.band[0].rnn.hidden_size)
        c0, h0 = int(tensors["inp_norm.weight"].shape[0]), int(tensors["band.0.rnn.weight_hh_l0"].shape[1])
        if (c0, h0) == (C, H):
            return tensors
        if min(c0, h0) < 1 or C % c0 or H % h0:
            raise ModelFileError(f"its widths (channels {c0}, hidden {h0}) do not divide this model's ({C}, {H}); "
                                 f"give the model the file's widths or whole multiples of them: "
                                 f"--set model.channels={c0} --set model.hidden={h0}")
        fc, fh = C // c0, H // h0
        g = torch.Generator().manual_seed(seed)

        def grow(t, out=None, inp=None):
            """out / inp: (dim, factor, blocks): repeat each of `blocks` blocks along dim `factor` times, or split it
            into `factor` random shares (inputs)."""
            for spec, split in ((out, False), (inp, True)):
                if spec is None or spec[1] == 1:
                    continue
                dim, f, blocks = spec
                parts = []
                for blk in t.chunk(blocks, dim):
                    if split:
                        w = torch.rand((f, *blk.shape), generator=g, dtype=torch.float64) + 0.5
                        w = w / w.sum(0, keepdim=True)            # in float64: a half file stays exact
                        parts += [(blk.double() * w[i]).to(blk.dtype) for i in range(f)]
                    else:
                        parts += [blk] * f
                t = torch.cat(parts, dim)
            return t.contiguous()

        def spec(name):
            """(out, in) growth of tensor `name`: which dims repeat (outputs) and which split (inputs)."""
            p = name.split(".")
            bias = "bias" in p[-1]                                              # bias, bias_ih_l0, ...
            if p[0] in ("time", "band") and p[2] == "blocks":                  # TimeConv: norm dw pw gelu pw
                return (0, fc, 1), (1, fc, 1) if p[4] in ("2", "4") and not bias else None
            if p[0] in ("time", "band") and p[2] == "rnn":                     # gates r z n; inputs x or h
                return (0, fh, 3), None if bias else (1, fc if "_ih_" in p[-1] else fh, 1)
            if p[0] in ("time", "band") and p[2] == "proj":                    # reads [forward h, backward h]
                return (0, fc, 1), None if bias else (1, fh, 2)
            if p[0] in ("inp_norm", "head_norm") or p[2:3] == ["norm"]:       # LayerNorms over channels
                return (0, fc, 1), None
            c_in = None if bias else (-2, fc, 1)                                # BandLinear: (K, in, out)
            return {"inp": ((-1, fc, 1), None), "head1": ((-1, fc, 1), c_in), "head2": (None, c_in)}[p[0]]

        return {name: grow(t, *spec(name)) for name, t in tensors.items()}

    def _bands(self, feat: torch.Tensor) -> torch.Tensor:
        """(B, F, N) -> (B, K, N, W) with padded bins zeroed."""
        g = feat[:, self.band_index.reshape(-1)]                        # (B, K*W, N)
        g = g.reshape(feat.shape[0], self.n_bands, self.max_width, -1) * self.band_valid[None, :, :, None]
        return g.transpose(2, 3)

    def _head_logits(self, h: torch.Tensor) -> torch.Tensor:
        """h (B, K, N, 2C) -> mask logits (B, S, n_mask, F, N) by head2, band by band over each band's valid bins
        only: head2's (K, 2C, W x S x n_mask) weight is padded to the widest band (142 bins at n_fft 2048, 3x the
        1025 real ones), and computing, copying and dropping the padding was the largest cost of a separation
        call in benchmarks/separator_profile.py. The same numbers as the padded einsum, in another order."""
        B, K, N, D = h.shape
        E = self.n_stems * self.n_mask
        hk = h.transpose(0, 1).reshape(K, B * N, D)
        w, b = self.head2.weight, self.head2.bias
        m = torch.cat([torch.addmm(b[k, 0, :n * E], hk[k], w[k, :, :n * E])
                       for k, n in enumerate(self.band_widths)], 1)               # (B*N, F*E), bins ordered
        return m.reshape(B, N, self.n_feat, self.n_stems, self.n_mask).permute(0, 3, 4, 2, 1)

    def _masks(self, m: torch.Tensor) -> torch.Tensor:
        """Mask logits (B, S, n_mask, F, N) -> masks (B, S, F, N) that sum to 1 over the stems."""
        if self.n_mask == 1:
            return torch.softmax(m[:, :, 0], dim=1)
        cm = torch.complex(m[:, :, 0], m[:, :, 1])
        return cm + (1 - cm.sum(1, keepdim=True)) / self.n_stems      # mixture consistency

    def forward(self, mix: torch.Tensor, targets: torch.Tensor | None = None, terms=None) -> SeparatorOutput:
        """mix (B, 1, T) -> SeparatorOutput(stems (B, S, T), waveform loss terms given targets, {}); any T."""
        B, _, T = mix.shape
        if self.low_fft and T <= self.low_fft // 2:                    # the long STFT's reflect padding
            pad = self.low_fft // 2 + 1 - T
            out = self.forward(torch.nn.functional.pad(mix, (0, pad)), None, terms)
            return self.output(out.stems[..., :T], targets, terms)
        X = stft(mix[:, 0], self.n_fft, self.hop)                      # (B, F, N) complex
        feat = torch.log(X.abs() + 1e-4)
        if self.low_fft:
            XL = stft(mix[:, 0], self.low_fft, self.hop)[:, :self.low_bins]          # (B, Fl, N), same frames
            feat = torch.cat([feat, torch.log(XL.abs() + 1e-4)], 1)
        x = self.inp_norm(self.inp(self._bands(feat)))                  # (B, K, N, C)
        _, K, N, C = x.shape
        for tm, bm in zip(self.time, self.band):
            if isinstance(tm, RNNAxis):
                x = tm(x.reshape(B * K, N, C)).reshape(B, K, N, C)
            else:
                x = tm(x.reshape(B * K, N, C).transpose(1, 2)).transpose(1, 2).reshape(B, K, N, C)
            x = bm(x.transpose(1, 2).reshape(B * N, K, C)).reshape(B, N, K, C).transpose(1, 2)
        h = torch.tanh(self.head1(self.head_norm(x)))
        m = self._head_logits(h)                                        # (B, S, n_mask, F, N)
        low = 0
        if self.low_fft:                 # the low band first, at the long STFT; the rest from what it left
            YL = self._masks(m[..., self.n_bins:, :]) * XL[:, None]
            YL = torch.nn.functional.pad(YL, (0, 0, 0, self.low_fft // 2 + 1 - self.low_bins))
            low = istft(YL, T, self.low_fft, self.hop)                   # (B, S, T)
            X = stft(mix[:, 0] - low.sum(1), self.n_fft, self.hop)
        Y = self._masks(m[..., :self.n_bins, :]) * X[:, None]           # (B, S, F, N), masks sum to 1
        y = istft(Y, T, self.n_fft, self.hop) + low                      # (B, S, T)
        return self.output(y, targets, terms)
