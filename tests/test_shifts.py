"""Test-time augmentation `--shifts N` (issue 19 item 4): N separations of the input delayed by random offsets,
each shifted back and averaged; reproducible from its seed."""
from __future__ import annotations

import torch

from latentmix.cli import main
from latentmix.separation.apply import separate_long


class Gains:
    """A shift-equivariant toy method: stem s = gain_s * mixture (any misaligned un-shift would show)."""
    name, stems, needs_references, hop, segment_seconds = "gains", ("bass", "drums"), False, 1, 1.0

    def separate(self, mix, refs):
        return torch.cat([0.25 * mix, 0.75 * mix], dim=1)


class Framewise(Gains):
    """Not shift-equivariant: the gain depends on the absolute position inside each segment."""

    def separate(self, mix, refs):
        ramp = torch.linspace(0, 1, mix.shape[-1])
        return torch.cat([ramp * mix, (1 - ramp) * mix], dim=1)


def test_shifts_are_undone_exactly_for_an_equivariant_method():
    x = torch.randn(2, 1, 22050 * 2)
    plain = separate_long(Gains(), x, sr=22050)
    shifted = separate_long(Gains(), x, sr=22050, shifts=3, seed=5)
    assert shifted.shape == plain.shape == (2, 2, x.shape[-1])
    assert torch.allclose(shifted, plain, atol=1e-6)


def test_shifts_average_differs_and_reproduces_from_its_seed():
    x = torch.randn(1, 1, 22050 * 2)
    plain = separate_long(Framewise(), x, sr=22050)
    a = separate_long(Framewise(), x, sr=22050, shifts=2, seed=1)
    b = separate_long(Framewise(), x, sr=22050, shifts=2, seed=1)
    c = separate_long(Framewise(), x, sr=22050, shifts=2, seed=2)
    assert torch.equal(a, b) and not torch.allclose(a, c) and not torch.allclose(a, plain)
    assert torch.allclose(a.sum(1), x[:, 0], atol=1e-5)            # still sums to the mixture


def test_negative_shifts_refused(tmp_path, capsys):
    import numpy as np
    import soundfile as sf
    sf.write(tmp_path / "a.wav", np.zeros(22050, np.float32), 22050)
    assert main(["separate", str(tmp_path / "a.wav"), "-o", str(tmp_path / "o"), "--shifts", "-1", "--quiet"]) == 2
    assert "--shifts -1" in capsys.readouterr().err and not (tmp_path / "o").exists()
