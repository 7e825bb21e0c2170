/* 16-bit PCM WAV: encode Float32 channels (the page's microphone recordings) and read a WAV header. */
"use strict";
(function (ns) {
  /** Encode channels (Float32Array each, same length) at sampleRate into a 16-bit PCM WAV ArrayBuffer. */
  function encodeWav(channels, sampleRate) {
    if (channels instanceof Float32Array) channels = [channels];
    if (!channels.length) throw new Error("encodeWav: no channels");
    const nch = channels.length, frames = channels[0].length, bytes = frames * nch * 2;
    const buf = new ArrayBuffer(44 + bytes), v = new DataView(buf);
    const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
    str(0, "RIFF"); v.setUint32(4, 36 + bytes, true); str(8, "WAVE");
    str(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, nch, true);
    v.setUint32(24, sampleRate, true); v.setUint32(28, sampleRate * nch * 2, true);
    v.setUint16(32, nch * 2, true); v.setUint16(34, 16, true);
    str(36, "data"); v.setUint32(40, bytes, true);
    let o = 44;
    for (let i = 0; i < frames; i++) {
      for (let c = 0; c < nch; c++) {
        let s = channels[c][i];
        s = s !== s ? 0 : Math.max(-1, Math.min(1, s));  // NaN -> 0, clip
        v.setInt16(o, s < 0 ? Math.round(s * 32768) : Math.round(s * 32767), true);
        o += 2;
      }
    }
    return buf;
  }

  /** Sample rate, channels, bits and duration from a RIFF/WAVE header, or null if it is not a WAV. */
  function parseWavHeader(buffer) {
    const v = new DataView(buffer);
    const tag = (o) => String.fromCharCode(v.getUint8(o), v.getUint8(o + 1), v.getUint8(o + 2), v.getUint8(o + 3));
    if (buffer.byteLength < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") return null;
    let o = 12, fmt = null, dataBytes = null;
    while (o + 8 <= buffer.byteLength) {
      const id = tag(o), size = v.getUint32(o + 4, true);
      if (id === "fmt ") {
        fmt = { format: v.getUint16(o + 8, true), channels: v.getUint16(o + 10, true),
                sampleRate: v.getUint32(o + 12, true), blockAlign: v.getUint16(o + 20, true),
                bitsPerSample: v.getUint16(o + 22, true) };
      } else if (id === "data") {
        dataBytes = Math.min(size, buffer.byteLength - o - 8);
        break;
      }
      o += 8 + size + (size & 1);
    }
    if (!fmt || dataBytes === null || !fmt.blockAlign || !fmt.sampleRate) return null;
    const frames = Math.floor(dataBytes / fmt.blockAlign);
    return { ...fmt, frames, duration: frames / fmt.sampleRate };
  }

  ns.wav = { encodeWav, parseWavHeader };
})(window.rainclean = window.rainclean || {});
