"""Web-demo load test: N uploads from C concurrent clients against `latentmix serve` on 127.0.0.1, then stop.

Run `python benchmarks/serve.py [--uploads 20] [--clients 4] [--seconds 4] [--task separate] [--write]`;
--write replaces the `serve` section of benchmarks/RESULTS.md.

The server runs as its own process (`python -m latentmix serve --tmp-dir D --workers 1 --queue C`), so its
memory is its own: peak resident memory is VmHWM from /proc/PID/status when it stops. Each client uploads a
different synthetic song (a few seconds of bass, drums and chords at 22050 Hz, 16-bit WAV), polls the job until it
finishes, downloads every result file and the zip, then uploads the next. Measured: failed jobs (any 4xx/5xx or
job error), latency per job (upload to done), total wall time, and the files left in D after the server is
stopped with SIGINT (its shutdown removes every job folder). The script stops by itself: each job has a time
limit and the server is stopped in a `finally`.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine, today, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def song(seed: int, seconds: float, sr: int = 22050) -> bytes:
    """A small synthetic song as WAV bytes (bass line, noise drums, two-note chords), different per seed."""
    import soundfile as sf
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    beat = 60 / rng.uniform(90, 130)
    root = 55 * 2 ** (rng.integers(0, 12) / 12)
    bass = 0.3 * np.sin(2 * np.pi * root * (1 + (t // (2 * beat) % 2) * 0.5) * t)
    env = np.exp(-((t % beat) / 0.05))
    drums = 0.3 * env * rng.standard_normal(len(t))
    chord = 0.1 * (np.sin(2 * np.pi * 4 * root * t) + np.sin(2 * np.pi * 5 * root * t)) * (t % (4 * beat) < 3 * beat)
    buf = io.BytesIO()
    sf.write(buf, np.clip(bass + drums + chord, -1, 1).astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def http(url: str, data: bytes | None = None, timeout: float = 120):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "audio/wav"} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--uploads", type=int, default=20)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--seconds", type=float, default=4.0, help="length of each uploaded song (default 4)")
    p.add_argument("--task", default="separate", choices=["separate", "codec"])
    p.add_argument("--job-timeout", type=float, default=600.0, help="give up on a job after this long (s)")
    p.add_argument("--write", action="store_true", help="replace the serve section of benchmarks/RESULTS.md")
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="latentmix-bench-serve-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    server = subprocess.Popen([sys.executable, "-m", "latentmix", "serve", "--port", str(port), "--tmp-dir", str(tmp),
                               "--workers", "1", "--queue", str(args.clients)], env=env)
    results, lock, peak_files = [], threading.Lock(), [0]
    counter = iter(range(args.uploads))
    t_start = time.time()
    try:
        t0 = time.time()
        while True:
            try:
                if http(base + "/api/info", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.time() - t0 > 180:
                raise SystemExit("the server did not start")
            time.sleep(0.3)
        startup = time.time() - t0
        query = "task=separate&method=supervised" if args.task == "separate" else "task=codec&level=6"

        def client():
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t1 = time.time()
                ok, err = False, ""
                try:
                    status, body = http(f"{base}/api/jobs?{query}", song(i, args.seconds))
                    if status != 202:
                        raise RuntimeError(f"upload: HTTP {status} {body[:100]!r}")
                    jid = json.loads(body)["id"]
                    while True:
                        status, body = http(f"{base}/api/jobs/{jid}")
                        j = json.loads(body)
                        if j["state"] in ("done", "error"):
                            break
                        if time.time() - t1 > args.job_timeout:
                            raise RuntimeError("job timeout")
                        time.sleep(0.5)
                    if j["state"] != "done":
                        raise RuntimeError(j["error"])
                    links = [x["audio"] for x in j["result"]["items"]] + [x["image"] for x in j["result"]["items"]]
                    links += [j["result"]["zip"]] if j["result"].get("zip") else []
                    for link in links:
                        status, data = http(base + link)
                        if status != 200 or not data:
                            raise RuntimeError(f"download {link}: HTTP {status}")
                    ok = True
                except Exception as e:  # recorded as a failed job
                    err = str(e)
                with lock:
                    results.append({"ok": ok, "seconds": time.time() - t1, "error": err})
                    peak_files[0] = max(peak_files[0], sum(1 for _ in tmp.rglob("*")))

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.time() - t_start - startup
        peak = peak_rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    left = sorted(str(x.relative_to(tmp)) for x in tmp.rglob("*"))
    if not left:
        tmp.rmdir()
    failed = [r for r in results if not r["ok"]]
    lat = sorted(r["seconds"] for r in results)
    audio_s = args.uploads * args.seconds
    text = "\n".join([
        "## Web demo load test (issue #22)", "",
        f"Machine: {machine()}; date {today()}; command `{command_line(__file__, argv)}`.", "",
        f"`latentmix serve` (1 worker, queue {args.clients}) on 127.0.0.1 in its own process; {args.clients} "
        f"clients upload {args.uploads} different synthetic {args.seconds:g} s songs (task `{args.task}`), poll each "
        "job, download every result file, and upload the next.", "",
        "| uploads | failed | wall (s) | audio s per wall s | job latency median / max (s) | server peak RSS (MB) | "
        "files in the job folder: peak / after shutdown |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {len(results)} | {len(failed)} | {wall:.1f} | {audio_s / max(wall, 1e-9):.2f} | "
        f"{statistics.median(lat):.1f} / {lat[-1]:.1f} | {peak:.0f} | {peak_files[0]} / {len(left)} |", "",
        f"Server start-up (imports, first page) took {startup:.1f} s. Latency is upload to done (queueing "
        "included: with one worker, four clients queue behind each other).",
    ] + ([f"Failures: {'; '.join(r['error'] for r in failed[:3])}"] if failed else []))
    print(text)
    if args.write:
        print(f"wrote {write_section('serve', text)}", file=sys.stderr)
    return 1 if failed or left else 0


if __name__ == "__main__":
    sys.exit(main())
