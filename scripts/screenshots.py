"""Take the README's two screenshots with Debian's chromium (Playwright, executable_path; no browser download):
docs/report.png from a report folder and docs/serve.png from a running `latentmix serve` after separating a song.

  python scripts/screenshots.py --report demo_out/report --server http://127.0.0.1:8000 --song demo_out/song.wav
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--report", help="a report folder (its index.html)")
    p.add_argument("--server", help="base URL of a running `latentmix serve`")
    p.add_argument("--song", help="audio file to upload to the server")
    p.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = b.new_page(viewport={"width": 1100, "height": 1000})
        if args.report:
            page.goto((Path(args.report).resolve() / "index.html").as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=str(DOCS / "report.png"))
        if args.server and args.song:
            page.goto(args.server)
            page.wait_for_function("document.querySelector('#separate-method').options.length > 0")
            page.set_input_files("#separate-file", args.song)
            page.click("#separate-go")
            page.wait_for_selector("#result:not([hidden])", timeout=600_000)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(DOCS / "serve.png"))
        b.close()


if __name__ == "__main__":
    main()
