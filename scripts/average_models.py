#!/usr/bin/env python3
"""Average the weights of fine-tunes of one model ("model soup") into one file (checkpoint.average_models).
    python scripts/average_models.py A.safetensors B.safetensors [--weights 1,1] --out SOUP.safetensors
"""
import argparse
import sys

from latentmix.checkpoint import average_models
from latentmix.errors import LatentmixError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="model files of one kind and config (two or more)")
    ap.add_argument("--weights", default=None, help="comma-separated weights (default: equal)")
    ap.add_argument("--out", required=True, help="the averaged model file to write")
    args = ap.parse_args(argv)
    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    except ValueError:
        print(f"error: --weights: expected comma-separated numbers, got '{args.weights}'", file=sys.stderr)
        return 2
    try:
        out = average_models(args.models, args.out, weights)
    except LatentmixError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}: the average of {len(args.models)} models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
