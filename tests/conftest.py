"""Shared pytest fixtures: a tiny synthetic MSDM dataset built once per session through the Python API."""
from __future__ import annotations

import sys
from pathlib import Path

# Test this checkout's code, whatever latentmix an editable install elsewhere points to (git worktrees).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import pytest  # noqa: E402
import torch  # noqa: E402

# One torch thread for the whole session: the tests are small (threads cost more than they give), and this
# torch/MKL build fails batched float64 solves (fast_bss_eval) after the thread count goes 1 -> 2 within a
# process, which per-test set/restore fixtures would otherwise do.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Root Path of a 6-track x 4 s MSDM dataset (train 4, validation 1, test 1), seed 0, 22050 Hz float WAVs."""
    from latentmix.data.build import synth_dataset
    root = tmp_path_factory.mktemp("tiny_dataset")
    return synth_dataset(root, tracks=6, seconds=4.0, seed=0, progress=False)


# ---------------------------------------------------------------- web demo and browser (issue #22)
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts_dir():
    """Where browser screenshots go (gitignored; LATENTMIX_TEST_ARTIFACTS overrides)."""
    import os
    d = Path(os.environ.get("LATENTMIX_TEST_ARTIFACTS", ARTIFACTS))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def song_file(tiny_dataset, tmp_path_factory):
    """A generated 2.5 s song (the start of the tiny dataset's test mixture) as a 16-bit WAV file."""
    from latentmix.data.datasets import list_tracks, load_track
    import soundfile as sf
    track = list_tracks(tiny_dataset, "test")[0]
    mix = load_track(track).sum(0).numpy()[: int(2.5 * 22050)]
    path = tmp_path_factory.mktemp("upload") / "song.wav"
    sf.write(str(path), mix, 22050, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The web demo on a free loopback port, in this process: (base url, app). Skips without the web extra."""
    pytest.importorskip("fastapi", reason="the web demo needs the 'web' extra (fastapi)")
    pytest.importorskip("uvicorn", reason="the web demo needs the 'web' extra (uvicorn)")
    import socket
    import threading
    import time
    import uvicorn
    from latentmix.serve.app import ServeConfig, create_app
    root = tmp_path_factory.mktemp("serve_jobs")
    app = create_app(ServeConfig(max_upload_mb=50, workers=1, max_waiting=4, keep_seconds=3600,
                                 tmp_root=str(root)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    t0 = time.time()
    while not server.started:
        if time.time() - t0 > 30 or not thread.is_alive():
            pytest.fail("the web demo did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(timeout=10)


def chromium_path() -> str | None:
    import os
    import shutil
    return os.environ.get("LATENTMIX_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    """One headless Debian chromium for every page test (Playwright through executable_path; never
    `playwright install`). Skips with the reason when Playwright or chromium is missing."""
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    exe = chromium_path()
    if exe is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=exe, headless=True,
                               args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required",
                                     "--allow-file-access-from-files"])
    except Exception as e:
        pw.stop()
        pytest.skip(f"chromium at {exe} does not start under Playwright: {str(e).splitlines()[0]}")
    yield b
    b.close()
    pw.stop()
