"""latentmix: music in the code space of a neural audio codec.

Codec, supervised and Bayesian separation, and generation over codes, trained on built-in Slakh-like data.
"""
__version__ = "0.1.0"

SAMPLE_RATE = 22050
STEMS = ("bass", "drums", "guitar", "piano")
