"""Differentiable signal-domain pieces for training: inverse STFT and SI-SDR.

The forward STFT of training features is the shared numpy code in
``denoise_core.signal``; these TensorFlow functions only invert it, so the loss can be
measured on the reconstructed waveform.
"""

from __future__ import annotations

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
    wave = tf.signal.overlap_and_add(chunks, hop)
    n_frames = tf.shape(chunks)[1]
    norm = tf.signal.overlap_and_add(tf.tile((window**2)[tf.newaxis, :], [n_frames, 1]), hop)
    wave = wave / tf.maximum(norm, 1e-8)[tf.newaxis, :]
    offset = spec.n_fft // 2 if spec.center else 0
    return wave[:, offset : offset + length]


def si_sdr(reference: tf.Tensor, estimate: tf.Tensor, eps: float = 1e-8) -> tf.Tensor:
    """Scale-invariant SDR in dB per batch item, ``(batch, samples)`` inputs."""
    reference = reference - tf.reduce_mean(reference, axis=-1, keepdims=True)
    estimate = estimate - tf.reduce_mean(estimate, axis=-1, keepdims=True)
    scale = tf.reduce_sum(reference * estimate, axis=-1, keepdims=True) / (tf.reduce_sum(reference**2, axis=-1, keepdims=True) + eps)
    target = scale * reference
    noise = estimate - target
    ratio = (tf.reduce_sum(target**2, axis=-1) + eps) / (tf.reduce_sum(noise**2, axis=-1) + eps)
    return 10.0 * tf.math.log(ratio) / tf.math.log(10.0)

