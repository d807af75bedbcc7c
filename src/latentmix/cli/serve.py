"""`latentmix serve`: the web demo on http://127.0.0.1:8000 (loopback unless --host says otherwise).

Upload a song and separate it, round-trip it through the codec, or (when a prior is shipped) generate music from
a text prompt; jobs run on a bounded queue off the request thread (latentmix.serve).
"""
from __future__ import annotations

import sys

from ..errors import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="start the web demo (http://127.0.0.1:8000)", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload in MB (default 50)")
    p.add_argument("--workers", type=int, default=1, help="jobs running at once (default 1)")
    p.add_argument("--queue", type=int, default=4, help="jobs waiting beyond those; more get 503 (default 4)")
    p.add_argument("--keep-minutes", type=float, default=60.0,
                   help="remove a finished job's upload and results after this long (default 60)")
    p.add_argument("--max-seconds", type=float, default=600.0, help="longest audio a job takes (default 600)")
    p.add_argument("--tmp-dir", default=None, help="folder for the jobs (default: a new one under the system temp)")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        import uvicorn
        from ..serve.app import ServeConfig, create_app
    except ImportError as e:
        raise ConfigError(f"the web demo needs the 'web' extra: pip install -e '.[web]' ({e})") from None
    if args.workers < 1 or args.queue < 0 or args.max_upload_mb <= 0 or args.keep_minutes < 0:
        raise ConfigError("--workers must be >= 1, --queue >= 0, --max-upload-mb > 0, --keep-minutes >= 0")
    cfg = ServeConfig(max_upload_mb=args.max_upload_mb, workers=args.workers, max_waiting=args.queue,
                      keep_seconds=args.keep_minutes * 60, max_seconds=args.max_seconds, tmp_root=args.tmp_dir)
    app = create_app(cfg)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: anyone who can reach this machine can use the demo",
              file=sys.stderr)
    print(f"latentmix demo on http://{args.host}:{args.port}/  (jobs in {app.state.jobs.root}; Ctrl-C stops)",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
