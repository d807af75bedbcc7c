"""One spectral stack: audio.py's STFT (both frame grids) against its definition, the spectral distances against
their documented formulas written out by hand, the codec's and the separators' losses against the metrics, and the
layering (nothing else frames audio; metrics never import the codec)."""
import ast
import math
import re
import tokenize
from pathlib import Path

import numpy as np
import pytest
import torch

from latentmix import audio
from latentmix.codec.losses import mrstft_loss, multiscale_mel_loss, reconstruction_losses
from latentmix.codec.model import Codec
from latentmix.metrics.codec import log_mel_distance, mel_distance, multi_resolution_stft_distance
from latentmix.metrics.spectral import DAC_MEL_SCALES
from latentmix.separation.models.base import mrstft_l1

ROOT = Path(__file__).resolve().parents[1]


def _pair(shape=(2, 1, 6000), seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(shape[-1]) / 22050
    ref = 0.3 * torch.sin(2 * math.pi * 440 * t) + 0.05 * torch.randn(shape, generator=g)
    est = ref + 0.05 * torch.randn(shape, generator=g)
    est[..., :700] = 0.0                                   # exact silence: the floors and eps matter
    return est, ref


@pytest.mark.parametrize("n_fft,hop", [(128, 32), (100, 32), (64, 32)])
def test_same_stft_is_its_definition_and_inverts(n_fft, hop):
    """center="same": frame f is the Hann-windowed rfft of samples [f·hop - pad, f·hop - pad + n_fft), zeros
    outside, pad = (n_fft - hop) / 2; T / hop frames; istft gives back the T samples."""
    x = torch.randn(2, 3, hop * 20)
    spec = audio.stft(x, n_fft, hop, center="same")
    assert spec.shape == (2, 3, n_fft // 2 + 1, 20)
    pad = (n_fft - hop) // 2
    xp = np.pad(x.double().numpy(), [(0, 0), (0, 0), (pad, pad)])
    w = np.hanning(n_fft + 1)[:-1]                          # periodic Hann
    for f in (0, 7, 19):
        want = np.fft.rfft(xp[..., f * hop:f * hop + n_fft] * w, axis=-1)
        assert np.allclose(spec[..., f].numpy(), want, atol=1e-4)
    assert torch.allclose(audio.istft(spec, hop * 20, n_fft, hop, center="same"), x, atol=1e-5)
    short = audio.istft(spec, hop * 20 - 5, n_fft, hop, center="same")
    assert torch.equal(short, audio.istft(spec, hop * 20, n_fft, hop, center="same")[..., :-5])


def test_stft_grid_errors_and_centred_inverse():
    with pytest.raises(ValueError, match="even difference"):
        audio.stft(torch.randn(1, 100), 64, 31, center="same")
    with pytest.raises(ValueError, match="center"):
        audio.stft(torch.randn(1, 100), 64, 16, center=False)
    x = torch.randn(2, 1, 4000, dtype=torch.float64)
    assert torch.allclose(audio.istft(audio.stft(x, 256), 4000, 256), x, atol=1e-10)


def test_codec_v2_analysis_and_synthesis_are_audio_stft():
    torch.manual_seed(0)
    m = Codec(strides=[32], latent_dim=8, architecture="spectral",
              quantizer={"type": "rvq", "num_codebooks": 2, "codebook_size": 16, "codebook_dim": 4},
              spectral={"dim": 16, "encoder_depth": 1, "decoder_depth": 1}).eval()
    x = torch.randn(1, 1, 32 * 30)
    spec = audio.stft(x, 128, 32, center="same")                            # (B, C, bins, F)
    pairs = torch.view_as_real(spec.transpose(-1, -2))
    mag = pairs.square().sum(-1, keepdim=True)
    assert torch.allclose(m.encoder.spectrum(x), pairs * (mag + 1e-12).pow((0.3 - 1) / 2), atol=1e-6)
    z = torch.randn(1, 8, 30)
    s = m.decoder.spectrum(z)
    assert torch.equal(m.decoder.istft(s), audio.istft(s.transpose(-1, -2), 32 * 30, 128, 32, center="same"))


# ---- the documented definitions, written out with torch.stft directly (the reference the package must meet)

def _mag(x, n, hop):
    s = torch.stft(x.reshape(-1, x.shape[-1]), n, hop, window=torch.hann_window(n), center=True, return_complex=True)
    return torch.sqrt(s.real ** 2 + s.imag ** 2 + 1e-12).reshape(x.shape[0], -1, *s.shape[-2:])


def _log_mel_l1(est, ref, n, bands, power, floor=1e-5):
    fb = audio.mel_filterbank(n, bands, 22050)
    me, mr = fb @ _mag(est, n, max(1, n // 4)) ** power, fb @ _mag(ref, n, max(1, n // 4)) ** power
    return (mr.clamp_min(floor).log10() - me.clamp_min(floor).log10()).abs().flatten(1).mean(1)


def _mrstft(est, ref, ffts, sc, lm, lin, eps=1e-5):
    out = []
    for n in ffts:
        E, R = _mag(est, n, n // 4).flatten(1), _mag(ref, n, n // 4).flatten(1)
        out.append(sc * (R - E).norm(dim=1) / (R.norm(dim=1) + eps)
                   + lm * ((R + eps).log() - (E + eps).log()).abs().mean(1) + lin * (R - E).abs().mean(1))
    return torch.stack(out).mean(0)


def test_metrics_match_their_documented_formulas():
    est, ref = _pair()
    want_mel = sum(_log_mel_l1(est, ref, w, m, 1) for w, m in DAC_MEL_SCALES)
    assert torch.allclose(mel_distance(est, ref, reduction="none"), want_mel, rtol=1e-5)
    want_log = torch.stack([_log_mel_l1(est, ref, n, 80, 2) for n in (512, 1024, 2048)]).mean(0)
    assert torch.allclose(log_mel_distance(est, ref, reduction="none"), want_log, rtol=1e-5)
    want_mr = _mrstft(est, ref, (512, 1024, 2048), 1, 1, 0)
    assert torch.allclose(multi_resolution_stft_distance(est, ref, reduction="none"), want_mr, rtol=1e-5)


def test_codec_training_losses_are_the_metrics():
    """rec/mel = mel_distance / 7 (the metric sums DAC's 7 scales, the loss averages them); rec/stft is the
    MR-STFT distance itself; gradients agree the same way."""
    est, ref = _pair()
    est.requires_grad_()
    loss = multiscale_mel_loss(est, ref)
    metric = mel_distance(est, ref)
    assert loss.item() == pytest.approx(metric.item() / len(DAC_MEL_SCALES), rel=1e-6)
    g_loss, = torch.autograd.grad(loss, est)
    g_metric, = torch.autograd.grad(metric, est)
    assert torch.allclose(g_loss * len(DAC_MEL_SCALES), g_metric, rtol=1e-4, atol=1e-6)
    assert mrstft_loss(est, ref).item() == pytest.approx(multi_resolution_stft_distance(est, ref).item(), rel=1e-6)
    rec = reconstruction_losses(est, ref)
    assert set(rec) == {"rec/mel", "rec/stft", "rec/l1"}
    assert rec["rec/mel"].item() == pytest.approx(loss.item(), rel=1e-6)
    # a clip shorter than the longest windows: those scales leave both the sum and the count
    short_est, short_ref = est[..., :700].detach() + 0.01, ref[..., :700]
    fit = [s for s in DAC_MEL_SCALES if s[0] // 2 < 700]
    assert len(fit) == 6
    assert multiscale_mel_loss(short_est, short_ref).item() == pytest.approx(
        mel_distance(short_est, short_ref, fit).item() / 6, rel=1e-6)
    assert mrstft_loss(short_est, short_ref).item() == pytest.approx(
        multi_resolution_stft_distance(short_est, short_ref, (512, 1024)).item(), rel=1e-6)


def test_separator_mrstft_loss_is_the_shared_distance():
    """mean over 256...2048 points of L1 magnitude + 0.1 L1 log magnitude; a clip too short for all of them uses
    the longest power of two that fits."""
    est, ref = _pair((2, 4, 5000), seed=1)
    ref[:, 2] = 0.0                                                          # a silent stem
    assert mrstft_l1(est, ref).item() == pytest.approx(
        _mrstft(est, ref, (256, 512, 1024, 2048), 0, 0.1, 1).mean().item(), rel=1e-5)
    assert mrstft_l1(est[..., :100], ref[..., :100]).item() == pytest.approx(
        _mrstft(est[..., :100], ref[..., :100], (64,), 0, 0.1, 1).mean().item(), rel=1e-5)


# ---- layering

def _latentmix_imports(path: Path) -> set[str]:
    """The latentmix modules and subpackages directly below `latentmix` that a source file imports from."""
    pkg = path.relative_to(ROOT / "src").with_suffix("").parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            parts = list(pkg[:len(pkg) - node.level + 1]) if node.level else []
            parts += node.module.split(".") if node.module else []
            names = parts[1:2] or [a.name for a in node.names]     # `from . import x` names x
        elif isinstance(node, ast.Import):
            parts, names = [], [a.name.split(".")[1] for a in node.names if a.name.startswith("latentmix.")]
        else:
            continue
        if (parts[:1] or ["latentmix"]) == ["latentmix"]:
            out |= set(names)
    return out & {p.stem for p in (ROOT / "src/latentmix").iterdir() if not p.name.startswith("_")}


def test_layering_audio_below_metrics_below_codec():
    ground = {"errors", "fileio", "limits", "outputs"}                          # the ground floor
    assert _latentmix_imports(ROOT / "src/latentmix/audio.py") <= ground
    for f in (ROOT / "src/latentmix/metrics").glob("*.py"):
        bad = _latentmix_imports(f) & {"codec", "separation", "train", "cli", "data", "demo", "evaluation"}
        assert not bad, f"metrics/{f.name} imports {bad}"
    assert "metrics" in _latentmix_imports(ROOT / "src/latentmix/codec/losses.py")


def _code_lines(path: Path):
    """(line number, source line) of the lines of a Python file that hold code outside strings and comments."""
    lines = path.read_text().splitlines()
    code = {}
    with open(path, "rb") as fh:
        for tok in tokenize.tokenize(fh.readline):
            if tok.type not in (tokenize.STRING, tokenize.COMMENT, tokenize.ENCODING) and tok.string.strip():
                code.setdefault(tok.start[0], []).append(tok.string)
    return [(i, lines[i - 1]) for i in sorted(code)]


def test_no_second_stft_or_mel_outside_audio():
    """Only latentmix/audio.py frames audio, makes a window, applies a mel filterbank or overlap-adds (issue #15)."""
    pattern = re.compile(r"torch\.stft|torch\.istft|torch\.fft\.|hann_window|\.unfold\(|mel_filterbank\(|"
                         r"^def (?:i?stft|mel_spectrogram|overlap_add)\b")
    offenders = []
    for folder in ("src", "benchmarks"):
        for f in (ROOT / folder).rglob("*.py"):
            if f == ROOT / "src/latentmix/audio.py":
                continue
            offenders += [f"{f.relative_to(ROOT)}:{i}: {line.strip()}" for i, line in _code_lines(f)
                          if pattern.search(line.split("#", 1)[0])]
    assert not offenders, "\n".join(offenders)


def test_codec_stft_loss_is_bounded_on_a_silent_target():
    """The training loss divides spectral convergence by max(||R||, ||E||): a silent target (an isolated silent
    stem, 30 % of codec batches) gives SC = 1, not ||E|| / eps; the metric keeps the textbook definition."""
    est, silent = 0.01 * torch.randn(2, 1, 22050, generator=torch.Generator().manual_seed(0)), torch.zeros(2, 1, 22050)
    assert multi_resolution_stft_distance(est, silent).item() > 1e4
    sc_only = multi_resolution_stft_distance(est, silent, log_weight=0.0, sc_bounded=True)
    assert sc_only.item() == pytest.approx(1.0, rel=1e-5)
    assert mrstft_loss(est, silent).item() < 20
    est.requires_grad_()
    g, = torch.autograd.grad(mrstft_loss(est, silent), est)
    assert torch.isfinite(g).all() and (g * est).sum() > 0   # the gradient still pulls the estimate to silence
