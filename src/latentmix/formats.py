"""Output audio formats: what `--flac`, `--mp3`/`--mp3-bitrate`, `--float32`, `--int24` and `--clip-mode` mean,
and the one writer of (channels, time) audio in such a format.

Writing is soundfile's (libsndfile writes WAV and FLAC, and MP3 from libsndfile 1.1 through LAME), so no encoder
is written or wrapped here; this module only chooses the container, the sample type, the MP3 bitrate and how
peaks above full scale are handled (demucs' `--clip-mode`: `rescale` divides a whole track by its peak when it
exceeds 1, `clamp` cuts each sample, `none` keeps float32 values as they are).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, OutputError

CONTAINERS = {".wav": "WAV", ".flac": "FLAC", ".mp3": "MP3", ".ogg": "OGG", ".aiff": "AIFF", ".aif": "AIFF"}
# (lowest, highest) constant bitrate per MPEG version (MPEG-1 / 2 / 2.5 sample rates): libsndfile maps its
# compression level linearly from the highest (0) to the lowest (1); LAME then takes the nearest standard rate.
_MP3_KBPS = {32000: (32, 320), 44100: (32, 320), 48000: (32, 320), 16000: (8, 160), 22050: (8, 160),
             24000: (8, 160), 8000: (8, 64), 11025: (8, 64), 12000: (8, 64)}
CLIP_MODES = ("rescale", "clamp", "none")


@dataclass(frozen=True)
class AudioFormat:
    """ext: wav, flac or mp3; subtype: PCM_16, PCM_24 or FLOAT (wav/flac); bitrate: kbps (mp3); clip: one of
    CLIP_MODES."""

    ext: str = "wav"
    subtype: str = "PCM_16"
    bitrate: int = 320
    clip: str = "rescale"

    @classmethod
    def from_args(cls, args) -> AudioFormat:
        """From the options `add_format_arguments` adds (ConfigError for a combination that cannot be written)."""
        ext = "mp3" if getattr(args, "mp3", False) else "flac" if getattr(args, "flac", False) else "wav"
        subtype = "FLOAT" if getattr(args, "float32", False) else "PCM_24" if getattr(args, "int24", False) \
            else "PCM_16"
        if getattr(args, "float32", False) and getattr(args, "int24", False):
            raise ConfigError("--float32 and --int24: choose one")
        if ext == "flac" and subtype == "FLOAT":
            raise ConfigError("--flac --float32: FLAC holds integers only (use --int24, or --float32 alone)")
        if ext == "mp3" and subtype != "PCM_16":
            raise ConfigError("--mp3 with --float32/--int24: MP3 has no sample type; choose one")
        kbps = int(getattr(args, "mp3_bitrate", 320))
        if not 8 <= kbps <= 320:
            raise ConfigError(f"--mp3-bitrate {kbps}: must be in 8..320 kbps")
        clip = getattr(args, "clip_mode", "rescale")
        return cls(ext, subtype, kbps, clip)

    def for_path(self, path) -> AudioFormat:
        """This format with the container of `path`'s extension (an `-o song.flac` names its own format)."""
        ext = Path(path).suffix.lower().lstrip(".")
        if not ext or ext == self.ext:
            return self
        subtype = self.subtype if ext in ("wav", "aiff", "aif") or (ext == "flac" and self.subtype != "FLOAT") \
            else "PCM_16"
        return AudioFormat(ext, subtype, self.bitrate, self.clip)

    def check_rate(self, sr: int) -> None:
        """OutputError when the container cannot hold `sr` (MP3: 8 to 48 kHz MPEG rates only)."""
        if self.ext == "mp3" and int(sr) not in _MP3_KBPS:
            raise OutputError(f"--mp3: MP3 cannot hold {sr} Hz (it takes {', '.join(map(str, sorted(_MP3_KBPS)))}"
                              f" Hz); add --sr 44100 or choose --flac")

    def write(self, path, wav, sr: int) -> None:
        """Write (channels, time) audio to `path` (not atomic: give a temporary, see outputs.Transaction). Values
        are clamped to [-1, 1] for integer and compressed formats; apply `clip` first for the track's mode."""
        import numpy as np
        x = _numpy(wav)
        if self.subtype != "FLOAT" or self.ext != "wav":
            x = np.clip(x, -1.0, 1.0)
        x = x.T
        fmt = CONTAINERS.get("." + self.ext, "WAV")
        self.check_rate(sr)
        import soundfile as sf
        try:
            if self.ext == "mp3":
                lo, hi = _MP3_KBPS[int(sr)]
                level = min(0.99, max(0.0, (hi - self.bitrate) / (hi - lo)))   # libsndfile refuses 1.0
                sf.write(str(path), x, int(sr), format="MP3", subtype="MPEG_LAYER_III", compression_level=level,
                         bitrate_mode="CONSTANT")
            else:
                subtype = self.subtype if fmt != "OGG" else "VORBIS"
                sf.write(str(path), x, int(sr), format=fmt, subtype=subtype)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise OutputError(f"{path}: cannot write {self.ext} ({msg})") from None


def _numpy(wav):
    import numpy as np
    if hasattr(wav, "detach"):
        wav = wav.detach().cpu().float().numpy()
    x = np.asarray(wav, dtype=np.float32)
    return x[None] if x.ndim == 1 else x


def clip(arrays: dict, mode: str) -> dict:
    """Apply a clip mode to one track's outputs {name: (channels, time)} together: `rescale` divides them all
    by one factor (1.01 x the largest peak, when that exceeds 1; their sum stays the input's, scaled),
    `clamp` cuts each sample to [-1, 1], `none` leaves them."""
    if mode not in CLIP_MODES:
        raise ConfigError(f"--clip-mode {mode}: must be one of {', '.join(CLIP_MODES)}")
    import numpy as np
    arrays = {k: _numpy(v) for k, v in arrays.items()}
    if mode == "rescale":
        peak = max((float(np.abs(v).max()) for v in arrays.values() if v.size), default=0.0)
        if peak > 1.0:
            return {k: v / np.float32(1.01 * peak) for k, v in arrays.items()}
    elif mode == "clamp":
        return {k: np.clip(v, -1.0, 1.0) for k, v in arrays.items()}
    return arrays


def add_format_arguments(p) -> None:
    """The demucs output options, for every command that writes audio."""
    g = p.add_argument_group("output format (as demucs)")
    g.add_argument("--flac", action="store_true", help="write FLAC instead of WAV")
    g.add_argument("--mp3", action="store_true", help="write MP3 (LAME through libsndfile)")
    g.add_argument("--mp3-bitrate", type=int, default=320, metavar="KBPS", help="MP3 bitrate (default 320)")
    g.add_argument("--int24", action="store_true", help="24-bit integer samples (default 16-bit)")
    g.add_argument("--float32", action="store_true", help="32-bit float samples (WAV)")
    g.add_argument("--clip-mode", choices=CLIP_MODES, default="rescale",
                   help="peaks above full scale: rescale the whole track (default), clamp each sample, or none "
                        "(float32 keeps them)")
