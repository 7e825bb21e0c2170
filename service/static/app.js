/* The try-it page: choose/drop/record audio, POST /denoise, players, download, spectrograms, model info. */
"use strict";
(function () {
  const { wav, spectrogram } = window.rainclean;
  const $ = (id) => document.getElementById(id);
  const el = {
    modelInfo: $("model-info"), keySection: $("key-section"), keyForm: $("key-form"), key: $("api-key"),
    keyHelp: $("key-help"), drop: $("drop-zone"), file: $("file-input"), limits: $("limits"), record: $("record"),
    recordStatus: $("record-status"), inputName: $("input-name"), denoise: $("denoise"), status: $("status"),
    error: $("error"), before: $("before-audio"), after: $("after-audio"), beforeSpec: $("before-spec"),
    afterSpec: $("after-spec"), download: $("download"), timing: $("timing"), strength: $("strength"),
    strengthValue: $("strength-value"),
  };
  // the slider's top step means "no limit"; below it, the noise is attenuated by at most that many dB
  const STRENGTH_FULL = Number(el.strength.max);
  function strengthLimit() {
    const v = Number(el.strength.value);
    return v >= STRENGTH_FULL ? null : v;
  }
  function showStrength() {
    const limit = strengthLimit();
    el.strengthValue.textContent = limit === null ? "full" : `at most ${limit} dB`;
  }
  el.strength.addEventListener("input", showStrength);
  showStrength();
  const KEY_STORE = "rainclean.apiKey";
  const state = { apiKey: sessionStorage.getItem(KEY_STORE) || "", input: null, inputUrl: null, outputUrl: null,
                  before: null, busy: false, recorder: null, maxSeconds: null };
  const setPageState = (s) => { document.body.dataset.state = s; };
  setPageState("idle");

  // ------------------------------------------------------------------ API helpers
  function headers() {
    return state.apiKey ? { Authorization: `Bearer ${state.apiKey}` } : {};
  }

  async function errorText(resp) {
    let code = "", message = "";
    try {
      const body = await resp.json();
      code = (body && body.error && body.error.code) || "";
      message = (body && body.error && body.error.message) || "";
    } catch (_) { /* not JSON: a proxy's page */ }
    message = message || resp.statusText || "no details";
    const retry = resp.headers.get("Retry-After");
    switch (resp.status) {
      case 401: return `The service needs a valid API key: ${message}. Enter the key in the "API key" box above.`;
      case 413: return `The recording is too large or too long: ${message}`;
      case 415: return `This file type is not accepted: ${message}`;
      case 400: return `The file could not be read as audio: ${message}`;
      case 422: return `The request was not accepted: ${message}`;
      case 503: return `The service cannot take this now (${code || "unavailable"}): ${message}.` +
                       (retry ? ` Try again in ${retry} second${retry === "1" ? "" : "s"}.` : " Try again shortly.");
      default: return `Denoising failed (HTTP ${resp.status}${code ? `, ${code}` : ""}): ${message}`;
    }
  }

  function showError(text) {
    el.error.textContent = text;
    el.error.hidden = false;
    setPageState("error");
  }
  function clearError() { el.error.hidden = true; el.error.textContent = ""; }
  function setStatus(text, ok) { el.status.textContent = text; el.status.classList.toggle("ok", !!ok); }

  function askForKey(reason) {
    el.keySection.hidden = false;
    if (reason) el.keyHelp.textContent = reason;
  }

  // ------------------------------------------------------------------ model info
  let infoTimer = null;
  async function loadModelInfo() {
    clearTimeout(infoTimer);
    let resp;
    try {
      resp = await fetch("/model-info", { headers: headers(), cache: "no-store" });
    } catch (e) {
      el.modelInfo.textContent = "Model: the service cannot be reached.";
      return;
    }
    if (resp.ok) {
      const info = await resp.json();
      el.modelInfo.textContent = `Model: ${info.name} ${info.version}`;
      el.modelInfo.dataset.name = info.name;
      el.modelInfo.dataset.version = info.version;
      if (window.rainclean.live) window.rainclean.live.setup(info.streaming, () => state.apiKey);
      const svc = info.service || {};
      state.maxSeconds = svc.max_duration_seconds || null;
      if (svc.max_upload_mb) {
        el.limits.textContent = `, up to ${svc.max_upload_mb} MB and ${Math.round(svc.max_duration_seconds)} s`;
      }
    } else if (resp.status === 401) {
      el.modelInfo.textContent = "Model: unknown until a valid API key is entered.";
      askForKey(state.apiKey ? "The API key was not accepted. Enter the right key; it is sent as " +
                                 "Authorization: Bearer <key> and kept only in this browser tab."
                              : "This service needs an API key. It is sent as Authorization: Bearer <key> " +
                                "and kept only in this browser tab.");
    } else if (resp.status === 503) {
      const retry = Math.max(1, parseInt(resp.headers.get("Retry-After") || "2", 10));
      el.modelInfo.textContent = `Model: still loading (checking again in ${retry} s)…`;
      infoTimer = setTimeout(loadModelInfo, retry * 1000);
    } else {
      el.modelInfo.textContent = `Model: unknown (HTTP ${resp.status}).`;
    }
  }

  el.keyForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.apiKey = el.key.value.trim();
    if (state.apiKey) sessionStorage.setItem(KEY_STORE, state.apiKey); else sessionStorage.removeItem(KEY_STORE);
    setStatus(state.apiKey ? "API key set." : "API key cleared.");
    loadModelInfo();
  });
  el.key.value = state.apiKey;

  // ------------------------------------------------------------------ spectrograms
  function sniffRate(buf) {
    const head = wav.parseWavHeader(buf);
    if (head) return head.sampleRate;
    const b = new Uint8Array(buf, 0, Math.min(buf.byteLength, 32));
    if (b.length >= 21 && b[0] === 0x66 && b[1] === 0x4c && b[2] === 0x61 && b[3] === 0x43) {  // fLaC STREAMINFO
      return (b[18] << 12) | (b[19] << 4) | (b[20] >> 4);
    }
    return null;
  }
  const analysisRate = (r) => Math.max(8000, Math.min(96000, r || 44100));

  async function analyse(buf, rate) {
    const decoded = await spectrogram.decodeMono(buf, analysisRate(rate));
    return spectrogram.stft(decoded.samples, decoded.sampleRate);
  }

  async function drawBefore() {
    const input = state.input;
    try {
      const buf = await input.blob.arrayBuffer();
      const spec = await analyse(buf, sniffRate(buf));
      if (state.input !== input) return;
      state.before = { buf, spec };
      spectrogram.draw(el.beforeSpec, spec, spec.max);
      el.beforeSpec.setAttribute("aria-label", `Spectrogram of the input, ${input.name}`);
    } catch (e) {
      state.before = null;
      el.beforeSpec.setAttribute("aria-label", "The browser could not decode this file to draw its spectrogram");
    }
  }

  // ------------------------------------------------------------------ input
  function resetOutput() {
    if (state.outputUrl) URL.revokeObjectURL(state.outputUrl);
    state.outputUrl = null;
    el.after.removeAttribute("src"); el.after.load();
    el.download.hidden = true; el.download.removeAttribute("href");
    el.timing.textContent = "";
    el.afterSpec.getContext("2d").clearRect(0, 0, el.afterSpec.width, el.afterSpec.height);
    delete el.afterSpec.dataset.drawn;
  }

  function setInput(blob, name) {
    if (state.inputUrl) URL.revokeObjectURL(state.inputUrl);
    state.input = { blob, name };
    state.inputUrl = URL.createObjectURL(blob);
    el.before.src = state.inputUrl;
    el.inputName.textContent = `Chosen: ${name} (${(blob.size / 1024).toFixed(0)} KB)`;
    el.beforeSpec.getContext("2d").clearRect(0, 0, el.beforeSpec.width, el.beforeSpec.height);
    delete el.beforeSpec.dataset.drawn;
    resetOutput(); clearError(); setStatus("");
    setPageState("ready");
    el.denoise.disabled = state.busy;
    drawBefore();
  }

  el.file.addEventListener("change", () => {
    const f = el.file.files && el.file.files[0];
    if (f) setInput(f, f.name);
  });
  ["dragenter", "dragover"].forEach((t) => el.drop.addEventListener(t, (ev) => {
    ev.preventDefault(); el.drop.classList.add("over");
  }));
  ["dragleave", "dragend"].forEach((t) => el.drop.addEventListener(t, () => el.drop.classList.remove("over")));
  el.drop.addEventListener("drop", (ev) => {
    ev.preventDefault(); el.drop.classList.remove("over");
    const f = ev.dataTransfer && ev.dataTransfer.files && ev.dataTransfer.files[0];
    if (f) setInput(f, f.name);
  });
  // a file dropped outside the box must not navigate away from the page
  window.addEventListener("dragover", (ev) => ev.preventDefault());
  window.addEventListener("drop", (ev) => ev.preventDefault());

  // ------------------------------------------------------------------ microphone
  async function startRecording() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.AudioWorkletNode) {
      showError("Recording needs a browser with Web Audio and a secure page (https:// or localhost).");
      return;
    }
    clearError();
    let stream;
    try {
      // the browser's own noise suppression off: the denoiser should hear the real recording
      stream = await navigator.mediaDevices.getUserMedia(
        { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    } catch (e) {
      showError(`The microphone could not be opened: ${e.message || e.name}`);
      return;
    }
    const ctx = new AudioContext();
    await ctx.audioWorklet.addModule("/static/recorder-worklet.js");
    const source = ctx.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(ctx, "rainclean-recorder");
    const chunks = [];
    let frames = 0;
    node.port.onmessage = (ev) => { chunks.push(ev.data); frames += ev.data.length; };
    source.connect(node); node.connect(ctx.destination);  // the node outputs silence
    const limit = Math.min(state.maxSeconds || 600, 600);
    const tick = setInterval(() => {
      const s = frames / ctx.sampleRate;
      el.recordStatus.textContent = `Recording… ${s.toFixed(1)} s`;
      if (s >= limit) stopRecording();
    }, 250);
    state.recorder = { stream, ctx, node, chunks, tick, framesRef: () => frames };
    el.record.setAttribute("aria-pressed", "true");
    el.record.textContent = "Stop recording";
    el.recordStatus.textContent = "Recording…";
  }

  async function stopRecording() {
    const r = state.recorder;
    if (!r) return;
    state.recorder = null;
    clearInterval(r.tick);
    r.stream.getTracks().forEach((t) => t.stop());
    r.node.port.onmessage = null;
    const rate = r.ctx.sampleRate;
    await r.ctx.close();
    const samples = new Float32Array(r.framesRef());
    let o = 0;
    for (const c of r.chunks) { samples.set(c, o); o += c.length; }
    el.record.setAttribute("aria-pressed", "false");
    el.record.textContent = "Record from microphone";
    if (!samples.length) { el.recordStatus.textContent = "Nothing was recorded."; return; }
    el.recordStatus.textContent = `Recorded ${(samples.length / rate).toFixed(1)} s at ${rate} Hz.`;
    const blob = new Blob([wav.encodeWav([samples], rate)], { type: "audio/wav" });
    setInput(blob, "recording.wav");
  }

  el.record.addEventListener("click", () => (state.recorder ? stopRecording() : startRecording()));

  // ------------------------------------------------------------------ denoise
  function setBusy(busy) {
    state.busy = busy;
    el.denoise.disabled = busy || !state.input;
    el.denoise.classList.toggle("busy", busy);
    el.denoise.setAttribute("aria-busy", busy ? "true" : "false");
    el.denoise.querySelector(".label").textContent = busy ? "Denoising…" : "Denoise";
  }

  async function denoise() {
    const input = state.input;
    if (!input || state.busy) return;
    clearError(); resetOutput();
    setBusy(true); setPageState("busy");
    setStatus(`Denoising ${input.name}…`);
    const form = new FormData();
    form.append("file", input.blob, input.name);
    const t0 = performance.now();
    let resp;
    try {
      const limit = strengthLimit();
      const url = limit === null ? "/denoise" : `/denoise?attenuation_limit_db=${limit}`;
      resp = await fetch(url, { method: "POST", body: form, headers: headers() });
    } catch (e) {
      setBusy(false); setStatus("");
      showError(`Could not reach the service: ${e.message}`);
      return;
    }
    if (!resp.ok) {
      const text = await errorText(resp);
      setBusy(false); setStatus("");
      if (resp.status === 401) askForKey(null);
      showError(text);
      if (resp.status === 401) el.key.focus();
      return;
    }
    const out = await resp.blob();
    const roundTrip = (performance.now() - t0) / 1000;
    const processing = parseFloat(resp.headers.get("X-Processing-Time") || "NaN");
    const stem = input.name.replace(/\.[^.]+$/, "") || "audio";
    state.outputUrl = URL.createObjectURL(new Blob([out], { type: "audio/wav" }));
    el.after.src = state.outputUrl;
    el.download.href = state.outputUrl;
    el.download.download = `${stem}-denoised.wav`;
    el.download.hidden = false;
    const model = [resp.headers.get("X-Model-Name"), resp.headers.get("X-Model-Version")].filter(Boolean).join(" ");
    el.timing.textContent = (isNaN(processing) ? "" : `Processed in ${processing.toFixed(2)} s`) +
      ` (${roundTrip.toFixed(2)} s with the upload)` + (model ? ` by ${model}.` : ".");
    el.timing.dataset.processingTime = isNaN(processing) ? "" : String(processing);
    setBusy(false);
    setStatus("Done. Listen to the result below.", true);
    // spectrograms at the output's sample rate, on the input's dB scale
    try {
      const buf = await out.arrayBuffer();
      const rate = sniffRate(buf);
      let before = state.before;
      if (!before || before.spec.sampleRate !== analysisRate(rate)) {
        const inBuf = before ? before.buf : await input.blob.arrayBuffer();
        before = { buf: inBuf, spec: await analyse(inBuf, rate) };
        state.before = before;
      }
      const after = await analyse(buf, rate);
      const ref = before.spec.max;
      spectrogram.draw(el.beforeSpec, before.spec, ref);
      spectrogram.draw(el.afterSpec, after, ref);
      el.afterSpec.setAttribute("aria-label", `Spectrogram of the denoised ${input.name}, on the input's scale`);
    } catch (e) {
      el.afterSpec.setAttribute("aria-label", "The denoised audio's spectrogram could not be drawn");
    }
    setPageState("done");
  }
  el.denoise.addEventListener("click", denoise);

  loadModelInfo();
})();
