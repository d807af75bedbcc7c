"""`latentmix train codec|separator|prior`: train a model with the one training loop (CPU, GPU or torchrun DDP).

Resolves the preset or YAML config with --set overrides, checks the data folder, and calls train.loop.train.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError, InputError
from ..validation import arg

EPILOG = """\
examples:
  latentmix train codec --config cpu_v2 --data data/slakhlike --out runs/codec
  latentmix train codec --config configs/codec/cpu_v2.yaml --data data/slakhlike --out runs/codec \\
      --set train.lr=3e-4 --set train.batch_size=16 --steps 2000
  latentmix train codec --config cpu_v2 --data data/slakhlike --out runs/codec --resume   # after Ctrl-C / a kill
  latentmix train separator --config spec --data data/slakhlike --out runs/sep --seed 1 --quiet
  latentmix train prior --config cpu_delay --data data/slakhlike --out runs/prior_bass --set train.stem=bass
  torchrun --nproc_per_node 2 -m latentmix train codec --config gpu_v2 --data data/slakhlike --out runs/codec_gpu

The run folder gets config.yaml (resolved), metrics.jsonl, checkpoint.safetensors (every train.ckpt_every steps
and on Ctrl-C/SIGTERM), best.safetensors (by validation score, when the task reports one) and model.safetensors.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a codec, separator or code prior (resumable, DDP via torchrun)",
        description="Train a model with latentmix's training loop. Interrupt with Ctrl-C or SIGTERM: the loop "
                    "writes a checkpoint at the end of the step; --resume continues bit-exactly.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=["codec", "separator", "prior"], help="what to train")
    p.add_argument("--config", required=True, metavar="NAME_OR_YAML",
                   help="a preset name from configs/<task>/ or a path to a .yaml file")
    p.add_argument("--data", required=True, metavar="DIR", help="data root (MSDM layout: train/, validation/)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder for checkpoints, logs and the model")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config value, e.g. --set train.lr=1e-4 (repeatable)")
    p.add_argument("--seed", type=arg("seed"), default=None, help="random seed (default: train.seed, else 0)")
    p.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint.safetensors")
    p.add_argument("--init", metavar="MODEL", default=None,
                   help="start from this model file's weights (fine-tuning; same architecture; 'default': the "
                        "shipped model; a separator may add stems to its file's, e.g. other)")
    p.add_argument("--steps", type=arg("steps"), default=None, metavar="N",
                   help="total training steps (sets train.steps)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="default: cuda if available")
    p.add_argument("--quiet", action="store_true", help="no progress bar (log lines still go to stderr)")
    p.set_defaults(func=run)


def run(args) -> int:
    import signal

    from ..config import apply_overrides, load_yaml, resolve_config_path
    from ..train.loop import resolve_task, train
    from ..train.settings import DEFAULTS, check_config

    path = resolve_config_path(args.config, args.task)
    source = str(path) + (f" with --set {' '.join(args.overrides)}" if args.overrides else "")
    config = load_yaml(path)
    if not isinstance(config.get("model"), dict):
        raise ConfigError(f"{path}: not a {args.task} config (it needs a 'model:' section)")
    # every loop setting is written out (the saved config.yaml is the resolved one) and settable with --set
    config["train"] = {**DEFAULTS, **(config.get("train") or {})}
    config = apply_overrides(config, args.overrides)
    if args.steps is not None:
        config["train"]["steps"] = args.steps
    if args.init is not None:
        if args.init == "default":          # the shipped model of this kind
            from ..pretrained.registry import resolve_model
            args.init = str(resolve_model("default", args.task))
        if not Path(args.init).is_file():
            raise InputError(f"{args.init}: no such model file for --init")
        config["train"]["init"] = str(args.init)
    check_config(config, source)
    data = Path(args.data)
    if not data.is_dir():
        raise InputError(f"{data}: no such data folder (make one with `latentmix data ...`)")
    seed = args.seed if args.seed is not None else int(config["train"].get("seed") or 0)
    task_cls = resolve_task(args.task)
    result = train(task_cls, config, str(data), args.out, seed=seed, resume=args.resume, device=args.device,
                   quiet=args.quiet, config_name=Path(args.config).stem, config_source=source)
    if result.get("interrupted"):
        return 128 + int(getattr(signal, result.get("signal") or "SIGINT"))
    return 0
