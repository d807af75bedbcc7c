"""`latentmix models`: the shipped models, by the names `-n/--name` (separate) and `--model` (codec) take."""
from __future__ import annotations

import json


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list the shipped models",
                              description="List the models shipped with latentmix: the names `latentmix separate "
                                          "-n NAME` and `latentmix codec ... --model NAME` take.",
                              epilog="example: latentmix models --json")
    p.add_argument("--json", action="store_true", help="one JSON object per model")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..pretrained.registry import shipped_models
    for m in shipped_models():
        size = m["path"].stat().st_size / 1e6 if m["installed"] else None
        if args.json:
            print(json.dumps({**m, "path": str(m["path"]), "size_mb": size and round(size, 2)}))
        else:
            state = f"{size:.1f} MB" if size else "not installed"
            print(f"{m['name']:<10} {m['kind']:<10} {state:<14} {m['description']}")
    return 0
