"""Small helpers shared by the benchmark scripts: the machine/date/command line every figure states, the
`NAME=PATH` row arguments and the parameter-count cell of the tables, and `write_section`, which replaces one
marked section of benchmarks/RESULTS.md atomically. The scripts import this module (and latentmix), never each
other: what they measure is latentmix.evaluation's.

A section is the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` (markers included); a file without
it gets the section appended. The file is rewritten with latentmix.fileio's atomic writer, so a reader never
sees a half-written RESULTS.md.

Importing it sets the allocator as the `latentmix` command does (latentmix.limits.keep_freed_memory), so the
timings are the command's.
"""
from __future__ import annotations

import datetime
import fcntl
import os
import platform
import shlex
import sys
from pathlib import Path

from latentmix.fileio import write_text
from latentmix.limits import keep_freed_memory

MALLOC_KEPT = keep_freed_memory()          # False under LATENTMIX_MALLOC=system or without glibc
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what `platform` knows elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nproc() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_average() -> str:
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def machine(threads: int | None = None, load: bool = True) -> str:
    """One line: CPUs and model, Python, torch and its thread count (and the 1/5/15-min load average)."""
    parts = [f"{nproc()} CPUs ({cpu_model()})", f"Python {platform.python_version()}"]
    try:
        import torch
        t = threads if threads is not None else torch.get_num_threads()
        parts.append(f"torch {torch.__version__} ({t} threads)")
    except ImportError:
        pass
    if not MALLOC_KEPT:
        parts.append("malloc defaults (latentmix.limits.keep_freed_memory not applied)")
    if load:
        parts.append(f"load average {load_average()}")
    return ", ".join(parts)


def today() -> str:
    return datetime.date.today().isoformat()


def command_line(script: str, argv=None) -> str:
    """`python benchmarks/<script> <args>` as the user would retype it."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", f"benchmarks/{Path(script).name}", *(shlex.quote(a) for a in args)])


def provenance(script: str, argv=None, threads: int | None = None) -> str:
    """The sentence every section starts with: machine, date and command."""
    return f"Machine: {machine(threads)}; date {today()}; command `{command_line(script, argv)}`."


def parse_named(specs, flag: str = "--model", reserved=()) -> list[tuple[str, str]]:
    """['NAME=PATH', ...] -> [(NAME, PATH)]; ConfigError for a malformed spec or a name used twice (or reserved)."""
    from latentmix.errors import ConfigError
    out, seen = [], set(reserved)
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ConfigError(f"{flag} {spec!r}: expected NAME=PATH")
        if name in seen:
            raise ConfigError(f"{flag} {spec!r}: the row name '{name}' is already used")
        seen.add(name)
        out.append((name, path))
    return out


def fmt_params(n) -> str:
    """A parameter count as a table cell: '-' (none), '12.3 k' or '1.23 M'."""
    if n is None:
        return "-"
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} k"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_section(text: str, name: str, markdown: str) -> str:
    """`text` with section `name` replaced by `markdown` (appended, after a blank line, when absent)."""
    begin, end = markers(name)
    if not name or any(c in name for c in "<>\n") or ":" in name:
        raise ValueError(f"invalid section name {name!r}")
    if begin in markdown or end in markdown:
        raise ValueError(f"the markdown for section '{name}' contains its own markers")
    block = f"{begin}\n{markdown.strip(chr(10))}\n{end}"
    nb, ne = text.count(begin), text.count(end)
    if nb == 0 and ne == 0:
        return (text.rstrip("\n") + "\n\n" if text.strip() else text) + block + "\n"
    if nb != 1 or ne != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"section '{name}' markers are malformed ({nb} begin, {ne} end); fix the file by hand")
    a, b = text.index(begin), text.index(end) + len(end)
    return text[:a] + block + text[b:]


def write_section(name: str, markdown: str, path=RESULTS) -> Path:
    """Replace (or append) section `name` of `path` (benchmarks/RESULTS.md by default) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)   # benchmarks run side by side: one writer at a time (a lock on the
    try:                                         # folder, which the atomic rename of the file does not replace)
        fcntl.flock(folder, fcntl.LOCK_EX)
        text = path.read_text() if path.exists() else "# Benchmark results\n"
        write_text(path, replace_section(text, name, markdown))
    finally:
        os.close(folder)
    return path


def publish(md: str, section: str, write: bool) -> None:
    """Print a benchmark's markdown; with `write`, also replace `section` of benchmarks/RESULTS.md (said on stderr)."""
    print(md)
    if write:
        print(f"wrote section '{section}' of {write_section(section, md)}", file=sys.stderr)


def run_main(run, argv=None) -> int:
    """A benchmark's entry point: run(argv), with a LatentmixError printed as one `error:` line and exit 2."""
    from latentmix.errors import LatentmixError
    try:
        return run(argv)
    except LatentmixError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
