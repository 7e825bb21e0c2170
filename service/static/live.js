/* Live denoising on the try-it page: the microphone streamed over WS /stream (float32, 20-ms frames),
   the denoised frames played back as they arrive. app.js calls setup() with /model-info's "streaming". */
"use strict";
(function (ns) {
  const $ = (id) => document.getElementById(id);
  const el = { section: $("live-section"), button: $("live"), status: $("live-status") };
  const FRAME_SECONDS = 0.02;
  const PLAY_AHEAD = 0.05;  // seconds of playback queued ahead, against network jitter
  let apiKey = () => "";
  let live = null;

  function say(text, stateName) {
    el.status.textContent = text;
    if (stateName) el.section.dataset.state = stateName;
  }

  function setPressed(on) {
    el.button.setAttribute("aria-pressed", on ? "true" : "false");
    el.button.textContent = on ? "Stop live denoising" : "Start live denoising";
  }

  function report(s) {
    const rate = s.ctx.sampleRate;
    el.status.dataset.rate = String(rate);
    el.status.dataset.sent = String(s.sent);
    el.status.dataset.received = String(s.received);
    const delay = s.ready ? `; delay ${Math.round(s.ready.latency_ms)} ms plus the network` : "";
    say(`Live: ${(s.sent / rate).toFixed(1)} s sent, ${(s.received / rate).toFixed(1)} s denoised back${delay}.`);
  }

  function play(s, samples) {
    s.received += samples.length;
    if (!samples.length || s.ctx.state === "closed") return;
    const buffer = s.ctx.createBuffer(1, samples.length, s.ctx.sampleRate);
    buffer.copyToChannel(samples, 0);
    const source = s.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(s.ctx.destination);
    s.playAt = Math.max(s.playAt, s.ctx.currentTime + PLAY_AHEAD);
    source.start(s.playAt);
    s.playAt += buffer.duration;
  }

  function sendFrames(s, block) {
    s.pending.push(block);
    s.pendingLength += block.length;
    const frame = Math.round(s.ctx.sampleRate * FRAME_SECONDS);
    if (s.pendingLength < frame || s.ws.readyState !== WebSocket.OPEN) return;
    const out = new Float32Array(s.pendingLength);
    let o = 0;
    for (const b of s.pending) { out.set(b, o); o += b.length; }
    s.pending = []; s.pendingLength = 0;
    s.ws.send(out.buffer);
    s.sent += out.length;
  }

  function release(s) {
    clearInterval(s.tick);
    s.node.port.onmessage = null;
    s.stream.getTracks().forEach((t) => t.stop());
  }

  function finish(s, ev) {
    if (live === s) live = null;
    release(s);
    setPressed(false);
    report(s);
    const normal = s.flushed && (ev.code === 1000 || ev.code === 1005);
    if (!normal) {
      say(`The live stream ended (${ev.code}${ev.reason ? `: ${ev.reason}` : ""}).`, "error");
    } else {
      el.section.dataset.state = "stopped";
      el.status.textContent += " Stopped.";
    }
    const tail = Math.max(0, s.playAt - s.ctx.currentTime);  // let the queued audio finish playing
    setTimeout(() => s.ctx.close(), 1000 * tail + 100);
  }

  async function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.AudioWorkletNode || !window.WebSocket) {
      say("Live denoising needs Web Audio, WebSockets and a secure page (https:// or localhost).", "error");
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(
        { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    } catch (e) {
      say(`The microphone could not be opened: ${e.message || e.name}`, "error");
      return;
    }
    const ctx = new AudioContext();
    await ctx.audioWorklet.addModule("/static/recorder-worklet.js");
    const source = ctx.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(ctx, "rainclean-recorder");
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/stream`);
    ws.binaryType = "arraybuffer";
    const s = { stream, ctx, node, ws, pending: [], pendingLength: 0, sent: 0, received: 0, playAt: 0,
                ready: null, flushed: false, tick: null };
    live = s;
    setPressed(true);
    say("Connecting…", "connecting");
    ws.onopen = () => {
      const header = { type: "start", sample_rate: ctx.sampleRate, channels: 1, format: "f32" };
      if (apiKey()) header.token = apiKey();
      ws.send(JSON.stringify(header));
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") { play(s, new Float32Array(ev.data)); return; }
      const msg = JSON.parse(ev.data);
      if (msg.type === "ready") {
        s.ready = msg;
        el.status.dataset.latencySamples = String(msg.latency_samples);
        node.port.onmessage = (m) => sendFrames(s, m.data);
        s.tick = setInterval(() => report(s), 250);
        el.section.dataset.state = "live";
        report(s);
      } else if (msg.type === "flushed") {
        s.flushed = true;
        ws.close(1000);
      }
    };
    ws.onclose = (ev) => finish(s, ev);
    source.connect(node); node.connect(ctx.destination);  // the recorder node outputs silence
  }

  function stop() {
    const s = live;
    if (!s) return;
    release(s);
    if (s.ws.readyState !== WebSocket.OPEN || !s.ready) { s.ws.close(1000); return; }
    if (s.pendingLength) {  // the last partial frame, then the tail
      const out = new Float32Array(s.pendingLength);
      let o = 0;
      for (const b of s.pending) { out.set(b, o); o += b.length; }
      s.pending = []; s.pendingLength = 0;
      s.ws.send(out.buffer);
      s.sent += out.length;
    }
    s.ws.send(JSON.stringify({ type: "flush" }));
    say("Stopping…", "stopping");
  }

  /* Show the live controls when the service has a streaming model (asking again while it loads);
     key() gives the page's API key. */
  function setup(streaming, key) {
    apiKey = key;
    el.section.hidden = !(streaming && streaming.available);
    if (!el.section.hidden && streaming.algorithmic_latency_ms) {
      $("live-latency").textContent = `${Math.round(streaming.algorithmic_latency_ms)} ms`;
    }
    if (streaming && !streaming.available && streaming.state === "loading") setTimeout(recheck, 1000);
  }

  async function recheck() {
    try {
      const resp = await fetch("/model-info", { cache: "no-store",
                                                headers: apiKey() ? { Authorization: `Bearer ${apiKey()}` } : {} });
      if (resp.ok) setup((await resp.json()).streaming, apiKey);
    } catch (_) { /* the service is gone: the controls stay as they are */ }
  }

  el.button.addEventListener("click", () => (live ? stop() : start()));
  ns.live = { setup };
})(window.rainclean = window.rainclean || {});
