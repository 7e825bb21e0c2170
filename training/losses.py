"""Differentiable signal-domain pieces for training: inverse STFT and SI-SDR.

The forward STFT of training features is the shared numpy code in
``denoise_core.signal``; these TensorFlow functions only invert it, so the loss can be
measured on the reconstructed waveform.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from denoise_core.signal import SignalSpec


def inverse_stft(real: tf.Tensor, imag: tf.Tensor, spec: SignalSpec, length: int) -> tf.Tensor:
    """Invert a centred ``librosa``-convention STFT given as ``(batch, freq, frames)``.

    Matches ``denoise_core.signal.istft`` (periodic Hann window, overlap-add with
    window-square normalisation, centre padding removed).
    """
    frames = tf.complex(tf.transpose(real, (0, 2, 1)), tf.transpose(imag, (0, 2, 1)))
    n_fft, hop = spec.n_fft, spec.hop_length
    window = tf.signal.hann_window(spec.window_length, periodic=True)
    if spec.window_length < n_fft:
        left = (n_fft - spec.window_length) // 2
        window = tf.pad(window, [[left, n_fft - spec.window_length - left]])
    chunks = tf.signal.irfft(frames, fft_length=[n_fft]) * window
    wave = overlap_add(chunks, hop)
    n_frames = tf.shape(chunks)[1]
    norm = overlap_add(tf.tile((window**2)[tf.newaxis, tf.newaxis, :], [1, n_frames, 1]), hop)
    wave = wave / tf.maximum(norm, 1e-8)
    offset = spec.n_fft // 2 if spec.center else 0
    return tf.slice(wave, [0, offset], [-1, length])


def overlap_add(frames: tf.Tensor, hop: int) -> tf.Tensor:
    """``tf.signal.overlap_and_add`` of ``(batch, frames, length)``; when ``hop`` divides the
    frame length, computed with pads and adds, whose gradient is far cheaper on CPU."""
    length = frames.shape[-1]
    if length is None or length % hop:
        return tf.signal.overlap_and_add(frames, hop)
    r = length // hop
    batch, n = tf.shape(frames)[0], tf.shape(frames)[1]
    parts = tf.unstack(tf.reshape(frames, [batch, n, r, hop]), axis=2)
    total = tf.add_n([tf.pad(part, [[0, 0], [j, r - 1 - j], [0, 0]]) for j, part in enumerate(parts)])
    return tf.reshape(total, [batch, (n + r - 1) * hop])


def si_sdr(reference: tf.Tensor, estimate: tf.Tensor, eps: float = 1e-8) -> tf.Tensor:
    """Scale-invariant SDR in dB per batch item, ``(batch, samples)`` inputs."""
    reference = reference - tf.reduce_mean(reference, axis=-1, keepdims=True)
    estimate = estimate - tf.reduce_mean(estimate, axis=-1, keepdims=True)
    scale = tf.reduce_sum(reference * estimate, axis=-1, keepdims=True) / (tf.reduce_sum(reference**2, axis=-1, keepdims=True) + eps)
    target = scale * reference
    noise = estimate - target
    ratio = (tf.reduce_sum(target**2, axis=-1) + eps) / (tf.reduce_sum(noise**2, axis=-1) + eps)
    return 10.0 * tf.math.log(ratio) / tf.math.log(10.0)



def overshoot_squared_error(clean: tf.Tensor, estimate: tf.Tensor, overshoot: float = 1.0) -> tf.Tensor:
    """Elementwise squared error, ``overshoot`` times heavier where the estimate exceeds the clean value."""
    excess = estimate - clean
    if overshoot == 1.0:
        return tf.square(excess)
    return tf.where(excess > 0, overshoot, 1.0) * tf.square(excess)


def unit_rms(wave: tf.Tensor) -> tf.Tensor:
    """``(batch, samples)`` waves each scaled to unit RMS."""
    return wave / tf.sqrt(tf.reduce_mean(tf.square(wave), axis=-1, keepdims=True) + 1e-8)


def stft(wave: tf.Tensor, n_fft: int, hop: int) -> tf.Tensor:
    """``(batch, frames, n_fft // 2 + 1)`` STFT of ``(batch, samples)`` waves with a periodic Hann
    window, the end zero-padded to whole frames (the loss terms' analysis, not the signal contract's)."""
    return tf.signal.stft(wave, n_fft, hop, n_fft, window_fn=functools.partial(tf.signal.hann_window, periodic=True), pad_end=True)


#: (n_fft, hop) of the multi-resolution compressed spectral loss
RESOLUTIONS: tuple[tuple[int, int], ...] = ((256, 128), (512, 256), (1024, 512))


def compressed_spectral_loss(clean: tf.Tensor, estimate: tf.Tensor, exponent: float = 0.3, complex_share: float = 0.3,
                             resolutions: tuple[tuple[int, int], ...] = RESOLUTIONS, overshoot: float = 1.0) -> tf.Tensor:
    """Per-item compressed spectral distance between ``(batch, samples)`` waveforms.

    At each STFT resolution, both spectra are compressed to ``|S|^p e^{i phase}``; the
    distance is ``complex_share`` times the MSE of their real and imaginary parts plus the
    rest times the MSE of their magnitudes ``|S|^p``, averaged over resolutions. In the
    magnitude term, bins where the estimate exceeds the clean magnitude (residual noise) weigh
    ``overshoot`` times as much as the others. Both waves are divided by the clean wave's RMS
    first, so the figure does not depend on the level.
    """
    level = tf.sqrt(tf.reduce_mean(tf.square(clean), axis=-1, keepdims=True) + 1e-8)
    clean, estimate = clean / level, estimate / level
    total = tf.zeros(tf.shape(clean)[:1])
    for n_fft, hop in resolutions:
        spectra = [stft(w, n_fft, hop) for w in (clean, estimate)]
        mags = [tf.sqrt(tf.square(tf.math.real(s)) + tf.square(tf.math.imag(s)) + 1e-12) for s in spectra]
        compressed = [tf.pow(m, exponent) for m in mags]
        parts = [(tf.math.real(s) / m * c, tf.math.imag(s) / m * c) for s, m, c in zip(spectra, mags, compressed)]
        mag_term = tf.reduce_mean(overshoot_squared_error(compressed[0], compressed[1], overshoot), axis=(1, 2))
        complex_term = tf.reduce_mean(tf.square(parts[0][0] - parts[1][0]) + tf.square(parts[0][1] - parts[1][1]), axis=(1, 2))
        total += complex_share * complex_term + (1.0 - complex_share) * mag_term
    return total / len(resolutions)
