"""The web demo and a report in a real browser: Playwright drives Debian's chromium (executable_path; never
`playwright install`). One browser for all page tests (conftest `browser`); they skip with the reason where
Playwright or chromium is missing. Screenshots go to test-artifacts/ (gitignored)."""
from __future__ import annotations

import shutil

import pytest

# every <audio> has loaded metadata with a positive duration, and play() advances currentTime
CHECK_AUDIO = """async () => {
  const out = [];
  for (const a of document.querySelectorAll('audio')) {
    if (a.readyState < 1) {
      await new Promise((ok, bad) => {
        a.addEventListener('loadedmetadata', ok, {once: true});
        a.addEventListener('error', () => bad(new Error('audio error ' + a.src)), {once: true});
        setTimeout(() => bad(new Error('audio timeout ' + a.src)), 20000);
        a.load();
      });
    }
    a.muted = true;
    const t0 = a.currentTime;
    await a.play();
    const start = performance.now();
    while (a.currentTime <= t0 && performance.now() - start < 5000) await new Promise(ok => setTimeout(ok, 50));
    a.pause();
    out.push({src: a.src, duration: a.duration, advanced: a.currentTime - t0});
  }
  return out;
}"""

CHECK_IMAGES = """async () => {
  const imgs = [...document.querySelectorAll('img')];
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(ok => { i.onload = ok; i.onerror = ok; })));
  return imgs.map(i => ({src: i.src, width: i.naturalWidth, complete: i.complete}));
}"""


def assert_media(page, n_audio):
    audio = page.evaluate(CHECK_AUDIO)
    assert len(audio) == n_audio, audio
    for a in audio:
        assert a["duration"] > 0, a
        assert a["advanced"] > 0, a
    imgs = page.evaluate(CHECK_IMAGES)
    assert imgs and all(i["width"] > 0 for i in imgs), imgs


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    p = ctx.new_page()
    errors = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    ctx.close()
    assert not errors, errors


def test_page_separates_an_upload(page, live_server, song_file, artifacts_dir):
    base, _ = live_server
    page.goto(base + "/")
    page.wait_for_function("document.querySelector('#separate-method').options.length > 0")
    assert page.is_hidden("#generate-form") == (not page.evaluate(
        "fetch('/api/info').then(r => r.json()).then(j => j.generation)"))
    page.set_input_files("#separate-file", str(song_file))
    page.click("#separate-go")
    page.wait_for_selector("#result:not([hidden])", timeout=180_000)
    assert page.is_visible("#zip")
    labels = page.eval_on_selector_all("#items figcaption", "els => els.map(e => e.textContent)")
    assert labels == ["mixture", "bass", "drums", "guitar", "piano"]
    assert_media(page, 5)
    page.screenshot(path=str(artifacts_dir / "serve_separate.png"), full_page=True)


def test_page_shows_a_bad_upload(page, live_server, tmp_path):
    base, _ = live_server
    fake = tmp_path / "notes.wav"
    fake.write_text("not audio, only a .wav name")
    page.goto(base + "/")
    page.wait_for_function("document.querySelector('#codec-level').options.length > 0")
    page.set_input_files("#codec-file", str(fake))
    page.click("#codec-go")
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert "not a WAV" in page.inner_text("#error")


def test_report_opens_from_a_copied_folder(page, tmp_path, artifacts_dir):
    from test_report import _evaluation_record, tone  # noqa: E402 (tests/ is on sys.path under pytest)
    import soundfile as sf
    from latentmix import STEMS
    from latentmix.report import separation_page
    sep = tmp_path / "sep" / "song"
    sep.mkdir(parents=True)
    for i, s in enumerate(STEMS):
        sf.write(sep / f"{s}.wav", tone(1.5, 110 * (i + 1)), 22050)
    index = separation_page(sep.parent, tmp_path / "rep", evaluation=_evaluation_record().to_json(),
                            scores={"song": {"bass": 1.0, "All": 1.0}})
    copy = tmp_path / "moved" / "report copy"
    shutil.copytree(index.parent, copy)
    shutil.rmtree(index.parent)
    page.goto((copy / "index.html").as_uri())
    assert_media(page, 1 + len(STEMS))
    page.screenshot(path=str(artifacts_dir / "report_separation.png"), full_page=True)
