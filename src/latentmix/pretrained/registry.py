"""Names of the shipped models and how to resolve a name or a path into a model file.

Shipped files live next to this module (`<name>_default.safetensors`); a missing one is a ModelFileError
that says how to train it.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ModelFileError

HERE = Path(__file__).resolve().parent
SHIPPED = {
    "codec": ("codec_default.safetensors",
              "latentmix train codec --config cpu_v2 --data DATA --out runs/codec && "
              "cp runs/codec/model.safetensors src/latentmix/pretrained/codec_default.safetensors"),
    "separator": ("separator_default.safetensors",
                  "see docs/reproduce.md (Separator): the spec preset, 45 min on data/slakhlike, then fine-tuned "
                  "in stages with train.extra_data (procedural, csound GM, OPL3, Merlin Silver and freepats + "
                  "Salamander piano + Hydrogen kit renders, fresh songs) and effects, then widened to 96 channels "
                  "(--init of a wider model: stage 10), then lmms-common guitars (stage 11) and tonejs-instruments' "
                  "multi-sampled guitars, bass and piano (stage 12), then 70 min with train.zone_shift 2 (stage 13), "
                  "then 45 + 110 min with zone_shift 4 (stage 15), then the average of that model and its 115-min "
                  "continuation with GeneralUser GS songs (stage 16), then the average of two 80-min "
                  "continuations of that on the same mix (stage 17; chosen on Sonivox EAS renders of the "
                  "validation songs); cp the averaged file (scripts/average_models.py --out) to "
                  "src/latentmix/pretrained/separator_default.safetensors"),
    "prior": ("prior_text_default.safetensors",
              "latentmix train prior --config cpu_text --data DATA --out runs/prior_text (docs/reproduce.md) && "
              "cp runs/prior_text/model.safetensors src/latentmix/pretrained/prior_text_default.safetensors"),
    "prior-bass": ("prior_bass_default.safetensors",
                   "latentmix train prior --config cpu_stem --set train.stem=bass --data DATA --out runs/prior_bass"),
    "prior-drums": ("prior_drums_default.safetensors",
                    "latentmix train prior --config cpu_stem --set train.stem=drums --data DATA "
                    "--out runs/prior_drums"),
    "code-counts": ("counts_default.safetensors",
                    "latentmix data pairs --data DATA --out runs/pairs && latentmix data counts --pairs runs/pairs "
                    "--out src/latentmix/pretrained/counts_default.safetensors"),
}


DESCRIPTIONS = {
    "codec": "codec v2 (spectral), 22050 Hz mono, residual VQ; `latentmix codec ...`",
    "separator": "spectrogram-mask separator, 22050 Hz, bass/drums/guitar/piano; `latentmix separate -n separator`",
}


def shipped_models(kind: str | None = None) -> list[dict]:
    """The shipped models (of `kind`, or all): name, kind, path, installed, description."""
    return [{"name": name, "kind": name, "path": HERE / fname, "installed": (HERE / fname).exists(),
             "description": DESCRIPTIONS.get(name, "")}
            for name, (fname, _) in SHIPPED.items() if kind in (None, name)]


def resolve_name(name: str, kind: str) -> Path:
    """The file of the shipped `kind` model called `name` (`-n/--name`); ConfigError listing the names."""
    from ..errors import ConfigError
    names = [m["name"] for m in shipped_models(kind)]
    if name not in names + ["default"]:
        raise ConfigError(f"-n {name}: no shipped {kind} model of that name (known: {', '.join(names) or 'none'}; "
                          f"see `latentmix models`, or pass a file with --model)")
    return resolve_model(None, kind)


def default_codec_path() -> Path:
    return HERE / SHIPPED["codec"][0]


def default_separator_path() -> Path:
    return HERE / SHIPPED["separator"][0]


def resolve_model(name_or_path, kind: str) -> Path:
    """A model file path from None/"default" (the shipped model of `kind`), a shipped name of that kind (e.g.
    "prior-bass") or a file path."""
    shipped = name_or_path if name_or_path in SHIPPED and str(name_or_path).startswith(f"{kind}-") else None
    if name_or_path in (None, "", "default", kind) or shipped:
        if (shipped or kind) not in SHIPPED:
            raise ModelFileError(f"no shipped '{kind}' model; pass a model file with --model")
        fname, how = SHIPPED[shipped or kind]
        p = HERE / fname
        if not p.exists():
            raise ModelFileError(f"{p}: the default {kind} model is not installed; train it with: {how} "
                                 f"(or pass --model PATH)")
        return p
    p = Path(name_or_path)
    if not p.exists():
        raise ModelFileError(f"{p}: no such model file")
    return p
