"""Shared neural-network blocks (weight-normed convs, Snake, residual units) used by every model."""
from .layers import (Conv1d, ConvTranspose1d, DecoderBlock, EncoderBlock, ResidualUnit, Snake1d,
                     make_activation, receptive_field, receptive_field_frames)

__all__ = ["Conv1d", "ConvTranspose1d", "DecoderBlock", "EncoderBlock", "ResidualUnit", "Snake1d",
           "make_activation", "receptive_field", "receptive_field_frames"]
