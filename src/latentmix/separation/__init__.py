"""Separation: the supervised separators (models/), the IRM oracle (oracle.py), THE chunked inference on long
audio (apply.py) and the method registry (registry.py: names -> methods).

Import submodules directly; this file keeps the package import cheap.
"""
