"""The neural audio codec: the codec contract, encoder, quantizers, decoder, losses, linearity and the on-disk code
file."""
from .base import CodecModel
from .model import Codec

__all__ = ["Codec", "CodecModel"]
