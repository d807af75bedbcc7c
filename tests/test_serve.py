"""The web demo's server side (latentmix.serve): the bounded job queue, cleanup, and bad input over HTTP — a
clear 4xx or error page, the server keeps serving, nothing left behind outside a job's folder."""
from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from latentmix.errors import InputError


def request(base, path, data=None, ctype="audio/wav", method=None, accept="application/json"):
    req = urllib.request.Request(base + path, data=data, method=method or ("POST" if data is not None else "GET"),
                                 headers={"Content-Type": ctype, "Accept": accept} if ctype else {"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def wait_job(base, jid, timeout=180):
    t0 = time.time()
    while time.time() - t0 < timeout:
        status, body, _ = request(base, f"/api/jobs/{jid}")
        j = json.loads(body)
        if j["state"] in ("done", "error"):
            return j
        time.sleep(0.3)
    raise AssertionError("job did not finish")


# ---------------------------------------------------------------- the queue, without a server
def test_queue_bounded_and_sweep(tmp_path):
    pytest.importorskip("fastapi")
    from latentmix.serve.jobs import JOB_ID, JobQueue, QueueFull
    gate = threading.Event()

    def runner(job):
        gate.wait(10)
        (job.folder / "out" / "r.txt").write_text("ok")
        return {"ok": True}

    q = JobQueue(runner, tmp_path / "jobs", workers=1, max_waiting=1, keep_seconds=0, sweep_every=3600)
    try:
        ids = []
        for _ in range(2):
            jid, folder = q.new_folder()
            assert JOB_ID.match(jid) and folder.parent == q.root
            q.submit(jid, folder, "separate", {})
            ids.append(jid)
        with pytest.raises(QueueFull):
            q.new_folder()
        gate.set()
        t0 = time.time()
        while any(q.get(j).state != "done" for j in ids) and time.time() - t0 < 10:
            time.sleep(0.02)
        assert q.file(ids[0], "r.txt").read_text() == "ok"
        for bad in ("../r.txt", ".hidden", "a/b", ""):
            assert q.file(ids[0], bad) is None
        assert q.get("../../etc") is None and q.get(ids[0].upper()) is None
        assert q.sweep() == 2
        assert list(q.root.iterdir()) == []
    finally:
        q.close()


def test_sniff(tmp_path):
    pytest.importorskip("fastapi")
    import numpy as np
    import soundfile as sf
    from latentmix.serve.tasks import sniff
    good = tmp_path / "x.bin"                       # the name says nothing; the bytes do
    sf.write(good, np.zeros(100, np.float32), 22050, format="FLAC")
    assert sniff(good) == "flac"
    for content in (b"", b"just some text, renamed .wav", b"RIFF\x00\x00\x00\x00WAVEjunk"):
        bad = tmp_path / "bad.wav"
        bad.write_bytes(content)
        with pytest.raises(InputError):
            sniff(bad)


# ---------------------------------------------------------------- over HTTP
def test_page_and_info(live_server):
    base, _ = live_server
    status, body, headers = request(base, "/", accept="text/html")
    assert status == 200 and b"latentmix" in body and b"http" not in body.replace(b'lang="en"', b"")
    info = json.loads(request(base, "/api/info")[1])
    assert "supervised" in info["methods"] and info["max_upload_mb"] == 50
    assert info["generation"] in (True, False)


def test_bad_input(live_server, tmp_path):
    base, app = live_server
    root = app.state.jobs.root
    before = set(root.iterdir())
    text = b"this is not audio at all\n" * 10
    cases = [
        ("empty upload", b"", "audio/wav", 400),
        ("text renamed .wav", text, "audio/wav", 400),
        ("non-audio content type", text, "text/plain", 415),
        ("truncated WAV header", b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav", 400),
    ]
    for what, data, ctype, want in cases:
        status, body, _ = request(base, "/api/jobs?task=separate", data, ctype)
        assert status == want, (what, status, body)
        assert json.loads(body)["error"], what
    status, body, _ = request(base, "/api/jobs?task=separate&method=..%2Fevil", text, "audio/wav")
    assert status == 400
    status, body, _ = request(base, "/api/jobs?task=rm", text, "audio/wav")
    assert status == 400
    # a browser asking for a page gets an HTML error page
    status, body, headers = request(base, "/jobs/../../etc/passwd", accept="text/html")
    assert status == 404 and b"<h1>Error 404</h1>" in body and "text/html" in headers["content-type"]
    for path in ("/api/jobs/..%2F..%2Fetc%2Fpasswd", "/api/jobs/" + "0" * 31 + "g", "/jobs/x/files/upload",
                 "/jobs/" + "a" * 32 + "/files/..%2F..%2Fupload", "/static/..%2Fapp.py", "/static/index.html"):
        assert request(base, path)[0] == 404, path
    # a 200 MB upload: refused from its declared length, before any of it is stored
    conn = http.client.HTTPConnection(base.split("//")[1], timeout=30)
    conn.putrequest("POST", "/api/jobs?task=separate")
    conn.putheader("Content-Type", "audio/wav")
    conn.putheader("Content-Length", str(200 * 1024 * 1024))
    conn.endheaders()
    conn.send(b"RIFF" + b"\0" * 65536)
    r = conn.getresponse()
    assert r.status == 413 and b"larger than 50 MB" in r.read()
    conn.close()
    # ... and one that does not declare it (chunked): cut off at the limit while streaming
    def body():
        chunk = b"\0" * (1 << 20)
        for _ in range(200):
            yield chunk
    conn = http.client.HTTPConnection(base.split("//")[1], timeout=60)
    try:
        conn.request("POST", "/api/jobs?task=separate", body=body(), headers={"Content-Type": "audio/wav"},
                     encode_chunked=True)
        r = conn.getresponse()
        assert r.status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass                                        # the server answered 413 and closed while we were sending
    finally:
        conn.close()
    # the server keeps serving, and nothing was left behind
    assert request(base, "/api/info")[0] == 200
    assert set(root.iterdir()) == before


def test_codec_job_over_http(live_server, song_file):
    base, app = live_server
    status, body, _ = request(base, "/api/jobs?task=codec&level=4", song_file.read_bytes(), "audio/x-wav")
    assert status == 202, body
    jid = json.loads(body)["id"]
    j = wait_job(base, jid)
    assert j["state"] == "done", j
    assert j["result"]["kbps"] > 0 and len(j["result"]["items"]) == 3
    for it in j["result"]["items"]:
        s, data, headers = request(base, it["audio"])
        assert s == 200 and data[:4] == b"RIFF"
    assert not (app.state.jobs.root / jid / "upload").exists()      # the upload goes once the job is done
    s, body, _ = request(base, "/api/jobs?task=codec&level=99", song_file.read_bytes(), "audio/wav")
    j = wait_job(base, json.loads(body)["id"])
    assert j["state"] == "error" and "codebooks" in j["error"]
    assert Path(app.state.jobs.root).is_dir()
