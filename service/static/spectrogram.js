/* Spectrograms in the page: decode, STFT (radix-2 FFT, Hann window), dB, draw on a canvas. */
"use strict";
(function (ns) {
  const RANGE_DB = 80;  // shown below the reference (the input's loudest bin)
  const MAX_COLUMNS = 1200;
  // magma-like colour stops (the legend's CSS gradient uses the same ones)
  const STOPS = [[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]];
  const LUT = (() => {
    const lut = new Uint8ClampedArray(256 * 3);
    for (let i = 0; i < 256; i++) {
      const x = (i / 255) * (STOPS.length - 1), k = Math.min(STOPS.length - 2, Math.floor(x)), f = x - k;
      for (let c = 0; c < 3; c++) lut[i * 3 + c] = STOPS[k][c] + f * (STOPS[k + 1][c] - STOPS[k][c]);
    }
    return lut;
  })();

  /** Decode any audio the browser reads into one mono Float32Array at sampleRate. */
  async function decodeMono(arrayBuffer, sampleRate) {
    const ctx = new OfflineAudioContext(1, 1, sampleRate);
    const audio = await ctx.decodeAudioData(arrayBuffer.slice(0));
    const out = new Float32Array(audio.length);
    for (let c = 0; c < audio.numberOfChannels; c++) {
      const ch = audio.getChannelData(c);
      for (let i = 0; i < out.length; i++) out[i] += ch[i] / audio.numberOfChannels;
    }
    return { samples: out, sampleRate: audio.sampleRate, duration: audio.duration, channels: audio.numberOfChannels };
  }

  function fftFactory(n) {
    const levels = Math.log2(n);
    if (levels % 1) throw new Error("FFT size must be a power of 2");
    const rev = new Uint32Array(n);
    for (let i = 0; i < n; i++) rev[i] = (rev[i >> 1] >> 1) | ((i & 1) << (levels - 1));
    const cos = new Float64Array(n / 2), sin = new Float64Array(n / 2);
    for (let i = 0; i < n / 2; i++) { cos[i] = Math.cos(2 * Math.PI * i / n); sin[i] = -Math.sin(2 * Math.PI * i / n); }
    /** In-place complex FFT of (re, im). */
    return function fft(re, im) {
      for (let i = 0; i < n; i++) {
        const j = rev[i];
        if (j > i) { let t = re[i]; re[i] = re[j]; re[j] = t; t = im[i]; im[i] = im[j]; im[j] = t; }
      }
      for (let size = 2; size <= n; size <<= 1) {
        const half = size >> 1, step = n / size;
        for (let start = 0; start < n; start += size) {
          for (let k = 0; k < half; k++) {
            const a = start + k, b = a + half, wr = cos[k * step], wi = sin[k * step];
            const xr = re[b] * wr - im[b] * wi, xi = re[b] * wi + im[b] * wr;
            re[b] = re[a] - xr; im[b] = im[a] - xi; re[a] += xr; im[a] += xi;
          }
        }
      }
    };
  }

  /** Power spectrogram in dB (frames x bins, bin 0 = DC), Hann window, n_fft scaled with the rate. */
  function stft(samples, sampleRate) {
    const n = sampleRate <= 16000 ? 512 : sampleRate <= 32000 ? 1024 : 2048;
    const bins = n / 2 + 1;
    const hop = Math.max(n / 4, Math.ceil(samples.length / MAX_COLUMNS));
    const frames = Math.max(1, Math.floor(Math.max(0, samples.length - n) / hop) + 1);
    const win = new Float64Array(n);
    for (let i = 0; i < n; i++) win[i] = 0.5 - 0.5 * Math.cos(2 * Math.PI * i / n);
    const fft = fftFactory(n), re = new Float64Array(n), im = new Float64Array(n);
    const db = new Float32Array(frames * bins);
    for (let f = 0; f < frames; f++) {
      const off = f * hop;
      for (let i = 0; i < n; i++) { const s = samples[off + i]; re[i] = (s === undefined ? 0 : s) * win[i]; im[i] = 0; }
      fft(re, im);
      for (let k = 0; k < bins; k++) db[f * bins + k] = 10 * Math.log10(re[k] * re[k] + im[k] * im[k] + 1e-12);
    }
    let max = -Infinity;
    for (let i = 0; i < db.length; i++) if (db[i] > max) max = db[i];
    return { db, frames, bins, hop, nFft: n, sampleRate, max };
  }

  /** Draw spec on canvas: refDb maps to the top colour, refDb - RANGE_DB and below to black. */
  function draw(canvas, spec, refDb) {
    const img = new ImageData(spec.frames, spec.bins);
    for (let f = 0; f < spec.frames; f++) {
      for (let k = 0; k < spec.bins; k++) {
        const v = (spec.db[f * spec.bins + k] - refDb + RANGE_DB) / RANGE_DB;
        const idx = Math.max(0, Math.min(255, Math.round(v * 255))) * 3;
        const p = ((spec.bins - 1 - k) * spec.frames + f) * 4;  // low frequencies at the bottom
        img.data[p] = LUT[idx]; img.data[p + 1] = LUT[idx + 1]; img.data[p + 2] = LUT[idx + 2]; img.data[p + 3] = 255;
      }
    }
    const off = document.createElement("canvas");
    off.width = spec.frames; off.height = spec.bins;
    off.getContext("2d").putImageData(img, 0, 0);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = true;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
    // frequency ticks (kHz) along the left edge
    const nyq = spec.sampleRate / 2, step = nyq > 12000 ? 4000 : nyq > 6000 ? 2000 : 1000;
    ctx.font = "12px system-ui, sans-serif"; ctx.textBaseline = "middle";
    for (let hz = step; hz < nyq; hz += step) {
      const y = canvas.height * (1 - hz / nyq);
      ctx.fillStyle = "rgba(255,255,255,0.85)"; ctx.fillRect(0, y, 6, 1);
      const label = `${hz / 1000} kHz`;
      ctx.fillStyle = "rgba(0,0,0,0.6)"; ctx.fillRect(8, y - 8, ctx.measureText(label).width + 6, 16);
      ctx.fillStyle = "#fff"; ctx.fillText(label, 11, y);
    }
    canvas.dataset.drawn = "true";
  }

  ns.spectrogram = { decodeMono, stft, draw, fftFactory, RANGE_DB };
})(window.rainclean = window.rainclean || {});
