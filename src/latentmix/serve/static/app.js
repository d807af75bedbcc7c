// latentmix web demo: upload -> job -> poll -> players. No libraries, no external requests.
"use strict";
const $ = (id) => document.getElementById(id);
let busy = false;

function showError(msg) {
  $("error").textContent = msg;
  $("error").hidden = !msg;
}

async function loadInfo() {
  const info = await (await fetch("/api/info")).json();
  for (const m of info.methods) $("separate-method").add(new Option(m, m, m === "supervised", m === "supervised"));
  const levels = info.codec_levels;
  for (const n of levels) $("codec-level").add(new Option(String(n), String(n)));
  if (levels.length) $("codec-level").value = String(levels[Math.floor(levels.length / 2)]);
  if (!levels.length) $("codec-form").hidden = true;
  if (!info.methods.length) $("separate-form").hidden = true;
  $("generate-form").hidden = !info.generation;
  $("limits").textContent = `Uploads up to ${info.max_upload_mb} MB and ${info.max_seconds} s of audio.`;
}

async function submit(query, file) {
  if (busy) return;
  busy = true;
  showError("");
  $("result").hidden = true;
  $("job").hidden = false;
  $("progress").value = 0;
  $("message").textContent = file ? "uploading" : "submitting";
  try {
    const opts = { method: "POST" };
    if (file) {
      opts.body = file;
      opts.headers = { "Content-Type": file.type || "application/octet-stream" };
    }
    const r = await fetch("/api/jobs?" + new URLSearchParams(query), opts);
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || `error ${r.status}`);
    await poll(j.id);
  } catch (e) {
    showError(String(e.message || e));
    $("job").hidden = true;
  } finally {
    busy = false;
  }
}

async function poll(id) {
  for (;;) {
    const r = await fetch(`/api/jobs/${id}`);
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || `error ${r.status}`);
    $("progress").value = j.progress;
    $("message").textContent = j.state === "queued" ? "waiting in the queue" : j.message;
    if (j.state === "done") { render(j.result); $("job").hidden = true; return; }
    if (j.state === "error") throw new Error(j.error);
    await new Promise((ok) => setTimeout(ok, 400));
  }
}

function render(res) {
  const items = $("items");
  items.replaceChildren();
  for (const it of res.items) {
    const fig = document.createElement("figure");
    fig.className = "stem";
    const cap = document.createElement("figcaption");
    cap.textContent = it.label;
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "auto";
    audio.src = it.audio;
    const img = document.createElement("img");
    img.src = it.image;
    img.alt = "spectrogram of " + it.label;
    fig.append(cap, audio, img);
    items.append(fig);
  }
  let s = "";
  if (res.kind === "separate") s = `Separated ${res.seconds} s with '${res.method}'.`;
  if (res.kind === "codec") s = `${res.level} codebook(s), ${res.kbps} kbps: SI-SDR ${res.si_sdr} dB, mel distance ${res.mel_distance}.`;
  if (res.kind === "generate") s = `Generated ${res.seconds} s` + (res.prompt ? ` from “${res.prompt}”.` : ".");
  $("summary").textContent = s;
  $("zip").hidden = !res.zip;
  if (res.zip) $("zip").href = res.zip;
  $("result").hidden = false;
}

$("separate-form").addEventListener("submit", (e) => {
  e.preventDefault();
  submit({ task: "separate", method: $("separate-method").value }, $("separate-file").files[0]);
});
$("codec-form").addEventListener("submit", (e) => {
  e.preventDefault();
  submit({ task: "codec", level: $("codec-level").value }, $("codec-file").files[0]);
});
$("generate-form").addEventListener("submit", (e) => {
  e.preventDefault();
  submit({ task: "generate", prompt: $("generate-prompt").value, seconds: $("generate-seconds").value }, null);
});
loadInfo().catch((e) => showError("could not reach the server: " + e));
