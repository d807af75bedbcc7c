"""HTML reports: self-contained folders (index.html + audio/ + img/, relative links only) that render the plain
records of latentmix.evaluation, separated folders, generation records and training runs. Nothing here runs a
model or scores anything; `latentmix report`, `make demo` and the web demo call these.
"""
from .html import Page
from .pages import (KINDS, codec_page, detect_kind, evaluation_page, generation_page, separation_page,
                    training_page)

__all__ = ["Page", "KINDS", "detect_kind", "separation_page", "evaluation_page", "codec_page", "generation_page",
           "training_page"]
