"""Wrap a mask network in a training graph whose outputs are a waveform and features.

The exported network stays the inner one (features -> mask); this wrapper applies
the mask to the noisy complex STFT and inverts it, so the loss is measured on the
reconstructed signal.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import tensorflow as tf

from denoise_core.signal import SignalSpec
from training.losses import compressed_spectral_loss, inverse_stft, overshoot_squared_error, si_sdr
from training.models.slicing import split_at
from training.perceptual_loss import perceptual_loss

MASK_FLOOR = 1e-3


def deep_filter(real: tf.Tensor, imag: tf.Tensor, taps: tf.Tensor, past: int) -> tuple[tf.Tensor, tf.Tensor]:
    """``sum_k taps_k * X[t - past + k]`` over frames for ``(B, F, T)`` spectra and
    ``(B, F, T, 2 * order)`` taps (real, imaginary pairs), as :func:`denoise_core.signal.deep_filter`."""
    order = taps.shape[-1] // 2
    frames = tf.shape(real)[2]
    pad = [[0, 0], [0, 0], [past, order - 1 - past]]
    xr, xi = tf.pad(real, pad), tf.pad(imag, pad)
    parts = tf.unstack(taps, axis=-1)
    out_r = out_i = tf.zeros_like(real)
    for k in range(order):
        tr, ti = parts[2 * k], parts[2 * k + 1]
        sr, si = (tf.slice(x, [0, 0, k], [-1, -1, frames]) for x in (xr, xi))
        out_r += tr * sr - ti * si
        out_i += tr * si + ti * sr
    return out_r, out_i


class MaskToSignal(keras.layers.Layer):
    """Apply a ``(B, F, T, 1)`` mask, or a ``(B, F, T, 2)`` complex mask (with a deep filter
    on the lowest bins, ``2 * order`` more channels), to a noisy STFT; return (waveform,
    normalised features)."""

    def __init__(self, signal: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.signal = signal
        self.spec = SignalSpec.from_dict(signal)

    def call(self, mask: tf.Tensor, real: tf.Tensor, imag: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        spec = self.spec
        frames = tf.shape(real)[2]
        length = (frames - 1) * spec.hop_length
        noisy_mag = tf.sqrt(real**2 + imag**2)
        if spec.output == "complex_mask":
            mr, mi, taps = tf.split(mask, [1, 1, mask.shape[-1] - 2], axis=-1)
            mr, mi = tf.squeeze(mr, -1), tf.squeeze(mi, -1)
            yr, yi = mr * real - mi * imag, mr * imag + mi * real
            gain = tf.sqrt(mr**2 + mi**2 + MASK_FLOOR**2)
            feats = tf.pow(gain, spec.compress_exponent) * tf.pow(noisy_mag, spec.compress_exponent)
            if spec.df_bins:
                low = spec.df_bins
                fr, fi = deep_filter(real[:, :low], imag[:, :low], split_at(taps, low, axis=1)[0], spec.df_past)
                yr, yi = tf.concat([fr, split_at(yr, low, 1)[1]], axis=1), tf.concat([fi, split_at(yi, low, 1)[1]], axis=1)
                # the filtered bins' magnitude, floored as a mask's gain is
                low_mag = tf.sqrt(fr**2 + fi**2 + (MASK_FLOOR * noisy_mag[:, :low]) ** 2)
                feats = tf.concat([tf.pow(low_mag, spec.compress_exponent), split_at(feats, low, 1)[1]], axis=1)
            wave = inverse_stft(yr, yi, spec, length)
        else:
            m = tf.squeeze(mask, -1)
            wave = inverse_stft(m * real, m * imag, spec, length)
            gain = tf.maximum(m, MASK_FLOOR)
            feats = tf.pow(gain, spec.compress_exponent) * tf.pow(noisy_mag, spec.compress_exponent)
        feats = (feats - spec.norm_min) / (spec.norm_max - spec.norm_min)
        return wave, tf.expand_dims(feats, -1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "signal": self.signal}


def signal_training_model(net: keras.Model, spec: SignalSpec) -> keras.Model:
    """Inputs features/real/imag; outputs ``wave`` and ``mag`` for the signal objective."""
    if spec.magnitude != "compressed" or spec.output not in ("mask", "complex_mask"):
        raise ValueError("the signal objective needs a mask network on compressed magnitudes")
    features = keras.Input(shape=(spec.n_freq, None, spec.input_channels), name="features")
    real = keras.Input(shape=(spec.n_freq, None), name="real")
    imag = keras.Input(shape=(spec.n_freq, None), name="imag")
    mask = net(features)
    if mask.dtype != "float32":  # a mixed-precision network: the signal graph stays in float32
        mask = keras.layers.Activation("linear", dtype="float32", name="mask_float32")(mask)
    wave, mag = MaskToSignal(spec.to_dict(), name="mask_to_signal")(mask, real, imag)
    wave = keras.layers.Identity(name="wave")(wave)
    mag = keras.layers.Identity(name="mag")(mag)
    return keras.Model({"features": features, "real": real, "imag": imag}, {"wave": wave, "mag": mag}, name="signal_training")


def negative_si_sdr_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Per-item negative SI-SDR (dB); Keras averages over the batch."""
    return -si_sdr(y_true, y_pred)


def wave_loss(kind: str, spectral_weight: float = 100.0, overshoot: float = 1.0,
              perceptual_weight: float = 0.0) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """The waveform loss: ``si_sdr`` (negative SI-SDR in dB) or ``si_sdr+spectral`` (plus
    ``spectral_weight`` times the multi-resolution compressed spectral loss, whose magnitude
    term weighs residual noise ``overshoot`` times); either plus ``perceptual_weight`` times
    the PESQ-style disturbance of ``training.perceptual_loss``."""
    if kind not in ("si_sdr", "si_sdr+spectral"):
        raise ValueError(f"unknown wave loss {kind!r}")
    if kind == "si_sdr" and not perceptual_weight:
        return negative_si_sdr_loss

    def combined(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        loss = -si_sdr(y_true, y_pred)
        if kind == "si_sdr+spectral":
            loss += spectral_weight * compressed_spectral_loss(y_true, y_pred, overshoot=overshoot)
        if perceptual_weight:
            loss += perceptual_weight * perceptual_loss(y_true, y_pred)
        return loss

    return combined


def mag_loss(overshoot: float = 1.0) -> str | Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """The loss of the ``mag`` output: MSE of the normalised compressed magnitudes, with bins
    where the estimate exceeds the clean magnitude (residual noise) weighing ``overshoot`` times."""
    if overshoot == 1.0:
        return "mse"

    def weighted_mse(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(overshoot_squared_error(y_true, y_pred, overshoot), axis=-1)

    return weighted_mse


def si_sdr_db(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Metric: SI-SDR in dB."""
    return si_sdr(y_true, y_pred)
