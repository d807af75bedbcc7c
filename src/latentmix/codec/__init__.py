"""The neural audio codec: encoder, quantizers, decoder, losses, linearity and the on-disk code file."""
from .model import Codec

__all__ = ["Codec"]
