"""The documented Python API (issue 21 item 8): Separator/Codec.from_pretrained, inference mode, exact lengths."""
from __future__ import annotations

import torch

import latentmix


def test_separator_from_pretrained_keeps_the_inputs_format():
    sep = latentmix.Separator.from_pretrained(device="cpu")
    assert sep.stems == ("bass", "drums", "guitar", "piano") and sep.sample_rate == 22050
    torch.manual_seed(0)
    wav = 0.1 * torch.randn(2, 44100 + 37)                         # stereo, 44.1 kHz, an odd length
    stems = sep.separate(wav, 44100)
    assert set(stems) == set(sep.stems)
    for y in stems.values():
        assert y.shape == wav.shape and not y.requires_grad
    assert (sum(stems.values()) - wav).abs().max() < 1e-4
    mono = sep.separate(wav[0], 44100)["bass"]
    assert mono.shape == (1, wav.shape[-1])


def test_codec_from_pretrained_inference_and_exact_lengths():
    codec = latentmix.Codec.from_pretrained()
    assert not codec.training and not any(p.requires_grad for p in codec.parameters())
    x = 0.1 * torch.randn(1, 1, 22050 + 11)
    codes = codec.encode(x, num_codebooks=4)
    y = codec.decode(codes)
    assert y.shape[-1] == codes.shape[-1] * codec.hop_length and not y.requires_grad   # the contract's length
    assert codec.decode(codes, length=x.shape[-1]).shape == x.shape                     # the input's
    wav = 0.1 * torch.randn(2, 48000 + 5)
    c = codec.compress(wav, 48000, num_codebooks=4)
    assert c["codes"].shape[:2] == (2, 4) and (c["sample_rate"], c["channels"], c["length"]) == (48000, 2, 48005)
    out = codec.decompress(c)
    assert out.shape == wav.shape and not out.requires_grad
