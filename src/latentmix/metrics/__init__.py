"""Metrics: SI-SDR, BSS-eval SDR, codec distances and the named evaluation protocols (msdm, lass).

Import from the submodules (sisdr, bss, codec, protocols); the common names are re-exported here.
"""
from .sisdr import si_sdr, si_sdr_improvement, si_snr_msdm  # noqa: F401
