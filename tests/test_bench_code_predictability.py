"""benchmarks/code_predictability.py: the n-gram baselines on sequences whose answer is known."""
import importlib.util
import sys
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "code_predictability.py"
sys.path.insert(0, str(_PATH.parent))
_spec = importlib.util.spec_from_file_location("bench_code_predictability", _PATH)
cp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cp)


def test_ngram_bits_on_known_sequences():
    cycle = [np.tile(np.arange(8), 50)]                        # uniform unigram, deterministic bigram
    uni, big = cp.ngram_bits(cycle, cycle, 8)
    assert abs(uni - 3.0) < 0.01 and big < 0.05
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 4, 20000)]
    uni, big = cp.ngram_bits(noise, [rng.integers(0, 4, 20000)], 4)
    assert abs(uni - 2.0) < 0.01 and abs(big - 2.0) < 0.02      # nothing to learn from the previous code
