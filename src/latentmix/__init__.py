"""latentmix: music in the code space of a neural audio codec.

Codec, supervised and Bayesian separation, and generation over codes, trained on built-in Slakh-like data.
"""
__version__ = "0.1.0"

SAMPLE_RATE = 22050
STEMS = ("bass", "drums", "guitar", "piano")


def __getattr__(name):
    """`from latentmix import Separator, Codec` (latentmix.api), imported on first use: `import latentmix` stays
    light."""
    if name in ("Separator", "Codec"):
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'latentmix' has no attribute {name!r}")
