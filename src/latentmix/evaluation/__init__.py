"""Run a method and score it, once for everyone: `latentmix eval`, the demo, the benchmarks (and later the HTML
reports and the web demo) call these and render the plain records they return (`to_json()` / `from_json()`).

- separation.evaluate_separation(candidates, data, split, protocol): separators, the IRM oracle and the
  through-codec ceiling over a split, scored by a named protocol -> per-window / per-track / per-method records.
- codec.evaluate_codec(codec, items, levels, ...): codec round trips at chosen numbers of codebooks (and Opus at
  chosen bitrates) -> per-item records and per-bitrate summaries.
- generation.evaluate_nll / evaluate_adherence / evaluate_continuation / evaluate_speed: a code prior's held-out
  NLL beside n-gram baselines (code_ngrams), prompt adherence and FD through a clip classifier (clips), the tempo
  a continuation keeps, generation speed (import latentmix.evaluation.generation; not re-exported here).
"""
from .codec import (CodecEvaluation, CodecRecord, CodecSpeed, CodecSummary, CodeUsage, evaluate_codec, evaluate_opus,
                    load_items)
from .records import Record
from .separation import (Candidate, CodecCeiling, SeparationEvaluation, SeparationResult, TrackRecord, WindowRecord,
                         evaluate_separation, oracle)

__all__ = ["Record", "Candidate", "CodecCeiling", "oracle", "evaluate_separation", "SeparationEvaluation",
           "SeparationResult", "TrackRecord", "WindowRecord", "evaluate_codec", "evaluate_opus", "load_items",
           "CodecEvaluation", "CodecRecord", "CodecSummary", "CodeUsage", "CodecSpeed"]
