"""The training graph applies a network's output exactly as the served signal code does."""

from __future__ import annotations

import training  # noqa: F401  (sets the TensorFlow environment first)

import numpy as np
import pytest
import tensorflow as tf

from denoise_core import signal as S
from training.graph import MaskToSignal
from training.models.default import DefaultConfig, build_default


@pytest.mark.parametrize("output,df_bins", [("mask", 0), ("complex_mask", 0), ("complex_mask", 65)],
                         ids=["mask", "complex-mask", "deep-filter"])
def test_training_graph_waveform_matches_the_service_inverse(output: str, df_bins: int) -> None:
    spec = S.SignalSpec(output=output, df_bins=df_bins).with_stats(0.0, 5.0)
    rng = np.random.default_rng(0)
    wave = rng.normal(0, 0.1, 256 * 40).astype(np.float32)
    spectrum = S.stft(wave, spec)
    # magnitude masks above the graph's floor (1e-3, which keeps |X|^0.3 differentiable)
    mask = rng.uniform(-1.0 if output == "complex_mask" else 0.05, 1.0, (*spectrum.shape, spec.output_channels)).astype(np.float32)
    served = S.istft(S.apply_output(spectrum, mask, spec), spec, length=wave.shape[0])
    graph_wave, feats = MaskToSignal(spec.to_dict())(tf.constant(mask[np.newaxis]), tf.constant(spectrum.real[np.newaxis]), tf.constant(spectrum.imag[np.newaxis]))
    np.testing.assert_allclose(graph_wave.numpy()[0], served, atol=1e-5)
    clean_feats = S.normalise(S.magnitude_features(np.abs(S.apply_output(spectrum, mask, spec)), spec), spec)
    np.testing.assert_allclose(feats.numpy()[0, ..., 0], clean_feats, atol=2e-3)


@pytest.mark.parametrize("complex_mask", [False, True])
def test_default_network_masks_are_bounded(complex_mask: bool) -> None:
    """The mask's modulus never exceeds one (tanh and sigmoid saturate to exactly 1.0 in float32)."""
    tf.keras.utils.set_random_seed(0)
    net = build_default(257, DefaultConfig(channels=(4, 8), bottleneck=16, dilations=(1, 2)), complex_mask=complex_mask)
    x = np.random.default_rng(1).uniform(-3.0, 3.0, (2, 257, 21, 3 if complex_mask else 1)).astype(np.float32)
    out = net(x).numpy()
    assert out.shape == (2, 257, 21, 2 if complex_mask else 1)
    magnitude = np.sqrt(np.sum(out**2, axis=-1))
    assert np.all(magnitude <= 1.0 + 1e-6) and np.all(np.isfinite(out))


def test_xla_training_step_matches_the_default_one() -> None:
    """step_benchmark --jit-compile times the same training step, only compiled by XLA."""
    from training.datasets import signal_batch
    from training.graph import signal_training_model
    from training.train import compile_signal_model

    spec = S.SignalSpec().with_stats(0.0, 5.0)
    rng = np.random.default_rng(2)
    clean = rng.normal(0, 0.1, (2, 256 * 20)).astype(np.float32)
    x, y = signal_batch(clean + rng.normal(0, 0.05, clean.shape).astype(np.float32), clean, spec)
    losses = []
    for jit in (False, True):
        tf.keras.utils.set_random_seed(0)
        model = signal_training_model(build_default(spec.n_freq, DefaultConfig(channels=(4, 8), bottleneck=16, dilations=(1, 2))), spec)
        compile_signal_model(model, 1e-3, 1500.0, jit_compile=jit)
        assert model.jit_compile is jit
        losses.append(model.train_on_batch(x, y, return_dict=True)["loss"])  # the loss before the update
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


def test_mixed_bfloat16_network_trains_in_bfloat16_and_feeds_a_float32_loss() -> None:
    """--precision mixed_bfloat16: the band network computes in bfloat16 with float32 weights,
    the signal graph and loss stay float32, the loss is near the float32 one, and the global
    policy is float32 again afterwards (export and scoring build float32 networks)."""
    import keras

    from training.datasets import signal_batch
    from training.graph import signal_training_model
    from training.presets import get_preset
    from training.train import build_network, compile_signal_model

    preset = get_preset("band")
    spec = preset.signal.with_stats(0.0, 5.0)
    options = preset.options({"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2]})
    rng = np.random.default_rng(3)
    clean = rng.normal(0, 0.1, (2, 256 * 20)).astype(np.float32)
    x, y = signal_batch(clean + rng.normal(0, 0.05, clean.shape).astype(np.float32), clean, spec)
    losses = {}
    for precision in ("float32", "mixed_bfloat16"):
        tf.keras.utils.set_random_seed(0)
        net = build_network(preset, spec, 1.0, options, precision)
        assert keras.mixed_precision.global_policy().name == "float32"
        assert net.get_layer("enc0_conv").compute_dtype == ("bfloat16" if precision == "mixed_bfloat16" else "float32")
        assert all(w.dtype == "float32" for w in net.weights)
        model = signal_training_model(net, spec)
        assert model.outputs[0].dtype == "float32" and model.outputs[1].dtype == "float32"
        compile_signal_model(model, 1e-3, 1500.0)
        losses[precision] = model.train_on_batch(x, y, return_dict=True)["loss"]
    np.testing.assert_allclose(losses["mixed_bfloat16"], losses["float32"], rtol=0.05)
