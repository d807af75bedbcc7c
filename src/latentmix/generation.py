"""Text (or nothing) -> codes -> audio: the Generator behind `latentmix generate`, over a shipped or trained prior
and the codec it was trained on, with classifier-free guidance, continuation of an audio prompt and denoising.

    from latentmix.generation import Generator
    audio = Generator.from_pretrained().generate("funky bass and drums at 120 bpm", seconds=10)   # (1, 1, T)
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from .errors import ConfigError, ModelFileError


def load_prior(path, device: str = "cpu"):
    """A prior model file (CodeTransformer or RQTransformer, from its header) -> the model in eval mode."""
    from .checkpoint import read_header
    from .priors import CodeTransformer, RQTransformer
    header = read_header(path)
    if header.get("kind") != "prior":
        raise ModelFileError(f"{path}: a '{header.get('kind')}' model file, expected a prior")
    cls = RQTransformer if (header.get("config") or {}).get("architecture") == "rq" else CodeTransformer
    return cls.load(path, device)


def slug(prompt: str, limit: int = 60) -> str:
    """A file-name stem from a prompt: lower case, words joined by '_', at most `limit` characters."""
    s = re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_")
    return (s[:limit].rstrip("_") or "untitled")


def generation_record(prompts: list[str] | None, settings: dict, outputs: list[Path], labels: list[str],
                      record_dir: Path | None = None, prompt_audio_path=None,
                      prompt_seconds: float | None = None) -> dict:
    """The generation record that report/generation.py reads: the prompts joined by '; ' (None: unconditional),
    the settings, {"audio", "label"} per output (its name where it lies in record_dir, else its absolute path), the
    audio prompt of a continuation (absolute path) and its length (s, 3 decimals), or None for both."""
    return {"prompt": "; ".join(prompts) if prompts else None, "settings": settings,
            "outputs": [{"audio": o.name if record_dir is not None and o.parent == record_dir else str(o.resolve()),
                         "label": label} for o, label in zip(outputs, labels)],
            "prompt_audio": str(Path(prompt_audio_path).resolve()) if prompt_audio_path else None,
            "prompt_seconds": round(prompt_seconds, 3) if prompt_seconds is not None else None}


def denoise(wav: torch.Tensor, sr: int) -> torch.Tensor:
    """Spectral gating (noisereduce, non-stationary) of (B, C, T) audio; the seed's optional clean-up pass."""
    try:
        import noisereduce
    except ImportError:
        raise ConfigError("--denoise needs noisereduce: pip install 'latentmix[text]'") from None
    x = wav.detach().cpu().numpy()
    y = noisereduce.reduce_noise(y=x.reshape(-1, x.shape[-1]), sr=sr, stationary=False, n_jobs=1)
    return torch.from_numpy(y.reshape(x.shape)).to(wav.dtype)


class Generator:
    """A prior over a codec's first K levels plus that codec; generate() returns audio at the codec's rate."""

    def __init__(self, prior, codec):
        from .priors.shards import codec_hash
        self.prior, self.codec = prior.eval(), codec.eval()
        want = (prior.config.get("codec") or {}).get("hash")
        if want and want != codec_hash(codec):
            raise ModelFileError(f"the prior was trained on another codec (hash {want}, this codec "
                                 f"{codec_hash(codec)}); pass the codec it was trained on")
        self.levels = int(prior.config["num_codebooks"])
        self.conditional = int(prior.config.get("cond_dim", 0)) > 0
        self._text = None

    @classmethod
    def from_pretrained(cls, prior=None, codec=None, device: str = "cpu") -> Generator:
        """The shipped text-to-music prior (or a prior file) and the shipped codec (or a codec file)."""
        from .codec.model import Codec
        from .pretrained.registry import resolve_model
        return cls(load_prior(resolve_model(prior, "prior"), device),
                   Codec.load(resolve_model(codec, "codec")).to(device).eval())

    @property
    def sample_rate(self) -> int:
        return int(self.codec.sample_rate)

    def condition(self, prompts: list[str] | None) -> torch.Tensor | None:
        """(B, 1, 384) embeddings of the prompts for a text prior; None for an unconditional prior."""
        if not self.conditional:
            if prompts and any(p.strip() for p in prompts):
                raise ConfigError("this prior is unconditional: it takes no text prompt (use --unconditional "
                                  "or a text prior)")
            return None
        if self._text is None:
            from .priors.text import TextEncoder
            self._text = TextEncoder()
        dev = next(self.prior.parameters()).device
        return self._text.encode(list(prompts or [])).to(dev)

    def encode_prompt(self, wav: torch.Tensor) -> torch.Tensor:
        """Audio prompt (B, 1, T) at the codec's rate -> its codes (B, K, F) on the prior's levels."""
        if wav.dim() != 3 or wav.shape[-1] < self.codec.hop_length:
            raise ConfigError(f"the audio prompt must be (batch, 1, >= {self.codec.hop_length} samples), "
                              f"got {tuple(wav.shape)}")
        with torch.inference_mode():
            return self.codec.encode_chunked(wav, self.levels)

    @torch.inference_mode()
    def generate_codes(self, prompts: str | list[str] | None = None, seconds: float = 10.0, batch: int = 1,
                       prompt_audio: torch.Tensor | None = None, cfg: float = 3.0, temperature: float = 1.0,
                       top_k: int = 250, top_p: float = 0.0, seed: int | None = 0, progress=None) -> torch.Tensor:
        """Codes (B, K, frames) for `seconds` of new audio (after the prompt's frames when continuing)."""
        if not seconds > 0:
            raise ConfigError(f"the duration must be > 0 seconds, got {seconds}")
        prompts = [prompts] if isinstance(prompts, str) else prompts
        cond = self.condition(prompts)
        prompt = self.encode_prompt(prompt_audio) if prompt_audio is not None else None
        if prompt is not None and cond is not None and prompt.shape[0] != cond.shape[0]:
            prompt = prompt.expand(cond.shape[0], -1, -1)
        frames = int(round(seconds * self.codec.frame_rate)) + (prompt.shape[-1] if prompt is not None else 0)
        from .priors import CodeTransformer
        from .priors.sampling import generate
        if isinstance(self.prior, CodeTransformer):
            return generate(self.prior, frames, batch=batch, cond=cond, prompt=prompt, cfg=cfg,
                            temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, progress=progress)
        if prompt is not None:
            raise ConfigError("continuation needs a pattern prior (the RQ-Transformer does not continue prompts)")
        return self.prior.generate(frames, batch=batch, cond=cond, temperature=temperature, top_k=top_k,
                                   top_p=top_p, seed=seed, cfg=cfg, progress=progress)

    def generate(self, prompts: str | list[str] | None = None, seconds: float = 10.0, batch: int = 1,
                 prompt_audio: torch.Tensor | None = None, denoise_output: bool = False, **kw) -> torch.Tensor:
        """Audio (B, 1, T) at the codec's rate: one clip per prompt (or `batch` unconditional clips). With
        `prompt_audio` (B or 1, 1, Tp) the clip starts with the prompt (as encoded) and continues it."""
        codes = self.generate_codes(prompts, seconds, batch, prompt_audio, **kw)
        with torch.inference_mode():
            wav = self.codec.decode_chunked(codes).clamp(-1, 1)
        return denoise(wav, self.sample_rate) if denoise_output else wav


def prompts_from_file(path) -> list[str]:
    """One prompt per non-empty line of a UTF-8 text file (InputError naming the file otherwise)."""
    from .errors import InputError
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such prompts file")
    try:
        lines = [ln.strip() for ln in p.read_bytes().decode("utf-8").splitlines()]
    except UnicodeDecodeError as e:
        raise InputError(f"{p}: not UTF-8 text (byte {e.start})") from None
    prompts = [ln for ln in lines if ln]
    if not prompts:
        raise InputError(f"{p}: holds no prompt (one per line)")
    return prompts
