"""Separation: oracle masks, the chunked stitching routine, the method registry (and the separators).

Import submodules directly; this file keeps the package import cheap.
"""
