"""The web demo's job queue: a bounded queue worked by a fixed number of threads, one temporary folder per job
under the server's own root, and a sweeper that removes finished jobs after `keep_seconds`.

Job ids are 32 random hex digits (secrets.token_hex) and every id that comes from a request is checked against
JOB_ID before it is used; a file name from a request is checked against FILE_NAME and resolved inside the job's
folder. Nothing from a request reaches the file system unchecked.
"""
from __future__ import annotations

import queue
import re
import secrets
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LatentmixError

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class QueueFull(Exception):
    """Every worker is busy and the waiting line is full (the server answers 503)."""


@dataclass
class Job:
    id: str
    task: str
    options: dict
    folder: Path
    state: str = "queued"                   # queued, running, done, error
    progress: float = 0.0
    message: str = "waiting in the queue"
    result: dict | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def public(self) -> dict:
        return {"id": self.id, "task": self.task, "state": self.state, "progress": round(self.progress, 3),
                "message": self.message, "result": self.result, "error": self.error}

    def report(self, progress: float, message: str) -> None:
        self.progress, self.message = max(self.progress, min(1.0, float(progress))), message


class JobQueue:
    """submit(task, options, prepare) -> Job; workers call runner(job) for each. Bounded: at most `workers`
    jobs run at once and `max_waiting` wait; a further submit raises QueueFull."""

    def __init__(self, runner, root=None, workers: int = 1, max_waiting: int = 4, keep_seconds: float = 3600,
                 sweep_every: float = 30.0):
        self.runner = runner
        self.own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="latentmix-serve-")) if root is None else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.workers, self.max_waiting, self.keep_seconds = int(workers), int(max_waiting), float(keep_seconds)
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.q: queue.Queue = queue.Queue()
        self.waiting = 0
        self.running = 0
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._work, name=f"latentmix-job-{i}", daemon=True)
                        for i in range(self.workers)]
        self.threads.append(threading.Thread(target=self._sweep, args=(sweep_every,), name="latentmix-sweep",
                                             daemon=True))
        for t in self.threads:
            t.start()

    # ---------------------------------------------------------------- ids and paths
    def new_folder(self) -> tuple[str, Path]:
        """A fresh random id and its folder (created) — the upload goes there before submit()."""
        with self.lock:
            if self.waiting + self.running >= self.workers + self.max_waiting:
                raise QueueFull()
        jid = secrets.token_hex(16)
        folder = self.root / jid
        folder.mkdir(mode=0o700)
        return jid, folder

    def get(self, jid: str) -> Job | None:
        if not isinstance(jid, str) or not JOB_ID.match(jid):
            return None
        with self.lock:
            return self.jobs.get(jid)

    def file(self, jid: str, name: str) -> Path | None:
        """The result file `name` of job `jid`, or None (bad id or name, unknown job, no such file)."""
        job = self.get(jid)
        if job is None or not isinstance(name, str) or not FILE_NAME.match(name):
            return None
        path = (job.folder / "out" / name).resolve()
        if path.parent != (job.folder / "out").resolve() or not path.is_file():
            return None
        return path

    # ---------------------------------------------------------------- queue
    def submit(self, jid: str, folder: Path, task: str, options: dict) -> Job:
        with self.lock:
            if self.waiting + self.running >= self.workers + self.max_waiting:
                shutil.rmtree(folder, ignore_errors=True)
                raise QueueFull()
            job = Job(jid, task, dict(options), folder)
            self.jobs[jid] = job
            self.waiting += 1
        self.q.put(job)
        return job

    def discard(self, folder: Path) -> None:
        """Remove the folder of an upload that was refused before submit()."""
        if folder.parent == self.root:
            shutil.rmtree(folder, ignore_errors=True)

    def _work(self) -> None:
        while not self.stopping.is_set():
            try:
                job = self.q.get(timeout=0.2)
            except queue.Empty:
                continue
            with self.lock:
                self.waiting -= 1
                self.running += 1
            job.state, job.message = "running", "starting"
            try:
                (job.folder / "out").mkdir(exist_ok=True)
                job.result = self.runner(job)
                job.state, job.progress, job.message = "done", 1.0, "done"
            except LatentmixError as e:
                job.state, job.error, job.message = "error", str(e), "failed"
            except Exception as e:  # a bug must not kill the worker: the job fails, the server keeps serving
                traceback.print_exc()
                job.state, job.error, job.message = "error", f"internal error: {type(e).__name__}: {e}", "failed"
            finally:
                job.finished = time.time()
                upload = job.folder / "upload"
                if upload.exists():
                    upload.unlink()
                with self.lock:
                    self.running -= 1

    def load(self) -> dict:
        with self.lock:
            return {"running": self.running, "waiting": self.waiting, "workers": self.workers,
                    "max_waiting": self.max_waiting}

    # ---------------------------------------------------------------- cleanup
    def sweep(self, now: float | None = None) -> int:
        """Remove finished jobs older than keep_seconds (their folders too); -> how many."""
        now = time.time() if now is None else now
        with self.lock:
            old = [j for j in self.jobs.values() if j.finished is not None and now - j.finished >= self.keep_seconds]
            for j in old:
                del self.jobs[j.id]
        for j in old:
            shutil.rmtree(j.folder, ignore_errors=True)
        return len(old)

    def _sweep(self, every: float) -> None:
        while not self.stopping.wait(every):
            self.sweep()

    def close(self) -> None:
        """Stop the workers and the sweeper and remove every job folder (and the root if this queue made it)."""
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=5)
        with self.lock:
            folders = [j.folder for j in self.jobs.values()]
            self.jobs.clear()
        for f in folders:
            shutil.rmtree(f, ignore_errors=True)
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)
