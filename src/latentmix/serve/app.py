"""The web demo: a FastAPI app serving one static page (serve/static/, no external assets) and a small JSON API.

  GET  /                         the page
  GET  /api/info                 methods, codec levels, whether text-to-music is on, limits, queue load
  POST /api/jobs?task=separate&method=NAME     body: the audio file itself (any of wav/flac/ogg/mp3/aiff)
  POST /api/jobs?task=codec&level=N            body: the audio file
  POST /api/jobs?task=generate&prompt=TEXT&seconds=S   (only when a prior is shipped)
       -> 202 {"id": ...}; 413 too large, 415 not audio, 400 bad input, 503 queue full
  GET  /api/jobs/{id}            state, progress (0..1), message, result (links to players, images, zip)
  GET  /jobs/{id}/files/{name}   a result file

The upload is the raw request body, streamed into the job's own folder and cut off at the size limit, so no
multipart parser ever spools it anywhere else. Its format is told from its bytes (tasks.sniff), never from its
name; the declared content type must be audio/* or application/octet-stream (or absent). Errors answer JSON
{"error": ...} to scripts and a short HTML page to a browser that asks for text/html.
"""
from __future__ import annotations

import contextlib
import html
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import LatentmixError
from .jobs import JobQueue, QueueFull
from .tasks import TASKS, codec_levels, generation_status, runner, sniff, web_methods

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "app.css": "text/css"}
CONTENT_TYPES = ("audio/", "application/octet-stream", "application/ogg", "video/ogg")


@dataclass
class ServeConfig:
    max_upload_mb: float = 50.0
    workers: int = 1                 # jobs running at once
    max_waiting: int = 4             # jobs waiting; one more is refused with 503
    keep_seconds: float = 3600.0     # finished jobs (uploads and results) are removed after this long
    max_seconds: float = 600.0       # longest audio a job takes
    tmp_root: str | None = None      # default: a fresh folder under the system temp dir


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def error_page(status: int, message: str) -> str:
    m = html.escape(message)
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error {status}</title>"
            f"<link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main><h1>Error {status}</h1>"
            f"<p class=\"error\">{m}</p><p><a href=\"/\">Back to the latentmix demo</a></p></main></body></html>")


def respond_error(request: Request, status: int, message: str):
    """JSON {"error": message} for scripts and the page's fetch(); an HTML page for a browser asking for one."""
    headers = {"Retry-After": "10"} if status == 503 else None
    accept = request.headers.get("accept", "")
    if "text/html" in accept and not request.url.path.startswith("/api/"):
        return HTMLResponse(error_page(status, message), status_code=status, headers=headers)
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def receive_upload(request: Request, path: Path, limit: int, limit_mb: float) -> None:
    """Stream the request body into `path`, stopping at `limit` bytes (413), then sniff it (400 if not audio)."""
    size = 0
    with open(path, "wb") as f:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, f"the upload is larger than {limit_mb:g} MB")
            f.write(chunk)
    try:
        sniff(path)
    except LatentmixError as e:
        raise HTTPError(400, str(e)) from None


def check_request(request: Request, task: str, method: str | None, limit: int, limit_mb: float) -> None:
    """Refuse what can be refused before reading the body: the task, text-to-music when off, the content type,
    a declared length over the limit, an unknown method."""
    if task not in TASKS:
        raise HTTPError(400, f"unknown task '{task[:40]}' (separate, codec or generate)")
    if task == "generate":
        ok, why = generation_status()
        if not ok:
            raise HTTPError(400, f"text-to-music is not available: {why}")
        return
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and not ctype.startswith(CONTENT_TYPES):
        raise HTTPError(415, f"expected an audio file, got content type '{ctype[:60]}'")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"the upload is larger than {limit_mb:g} MB")
    if task == "separate" and (method or "supervised") not in web_methods():
        raise HTTPError(400, f"unknown separation method '{str(method)[:40]}'")


def add_error_handlers(app) -> None:
    """Every error (ours, routing, bad parameters) answers through respond_error."""
    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, exc: HTTPError):
        return respond_error(request, exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, exc: StarletteHTTPException):
        msg = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return respond_error(request, exc.status_code, msg)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        where = ".".join(str(x) for x in errs[0].get("loc", [])[1:]) if errs else ""
        return respond_error(request, 400, f"bad parameter {where}: {errs[0].get('msg', '') if errs else ''}")


def create_app(config: ServeConfig | None = None):
    """The app; app.state.jobs is its JobQueue (closed, with every job folder, when the app shuts down)."""
    cfg = config or ServeConfig()
    jobs = JobQueue(runner(cfg.max_seconds), cfg.tmp_root, cfg.workers, cfg.max_waiting, cfg.keep_seconds)
    limit = int(cfg.max_upload_mb * 1024 * 1024)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        jobs.close()

    app = FastAPI(title="latentmix", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.jobs, app.state.config = jobs, cfg

    add_error_handlers(app)

    @app.get("/", response_class=HTMLResponse)
    def index():
        return HTMLResponse((STATIC / "index.html").read_text())

    @app.get("/static/{name}")
    def static(name: str):
        if name not in STATIC_FILES:
            raise HTTPError(404, "not found")
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name])

    @app.get("/api/info")
    def info():
        gen, why = generation_status()
        return {"methods": web_methods(), "codec_levels": codec_levels(), "generation": gen,
                "generation_note": why, "max_upload_mb": cfg.max_upload_mb, "max_seconds": cfg.max_seconds,
                "queue": jobs.load()}

    @app.post("/api/jobs", status_code=202)
    async def submit(request: Request, task: str = "separate", method: str | None = None, level: int | None = None,
                     prompt: str | None = None, seconds: float | None = None):
        check_request(request, task, method, limit, cfg.max_upload_mb)
        options = {"method": method, "level": level, "prompt": prompt, "seconds": seconds}
        try:
            jid, folder = jobs.new_folder()
        except QueueFull:
            raise HTTPError(503, "the server is busy (the job queue is full); try again in a minute") from None
        try:
            if task != "generate":
                await receive_upload(request, folder / "upload", limit, cfg.max_upload_mb)
            job = jobs.submit(jid, folder, task, options)
        except QueueFull:
            raise HTTPError(503, "the server is busy (the job queue is full); try again in a minute") from None
        except BaseException:
            jobs.discard(folder)
            raise
        return {"id": job.id, "state": job.state}

    @app.get("/api/jobs/{jid}")
    def status(jid: str):
        job = jobs.get(jid)
        if job is None:
            raise HTTPError(404, "no such job (finished jobs are removed after a while)")
        return job.public()

    @app.get("/jobs/{jid}/files/{name}")
    def files(jid: str, name: str):
        path = jobs.file(jid, name)
        if path is None:
            raise HTTPError(404, "no such file")
        media = {".wav": "audio/wav", ".png": "image/png", ".zip": "application/zip"}.get(path.suffix,
                                                                                       "application/octet-stream")
        return FileResponse(path, media_type=media, filename=path.name if path.suffix == ".zip" else None)

    return app
