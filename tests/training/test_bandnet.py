"""The band network's contract: any frame count, both output kinds, a lookahead that is really bounded."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.training

from denoise_core import signal as S  # noqa: E402
from training.models.bandnet import BandConfig, band_matrices, build_bandnet, receptive_future, time_padding  # noqa: E402

TINY = {"channels": (4, 6), "bottleneck": 16, "dilations": (1, 2, 4, 1)}


@pytest.mark.parametrize("n_freq,linear,bands", [(257, 65, 64), (129, 33, 32), (513, 129, 96)])
def test_band_matrices_keep_a_constant_spectrum_both_ways(n_freq: int, linear: int, bands: int) -> None:
    merge, spread = band_matrices(n_freq, linear, bands)
    assert merge.shape == (n_freq, linear + bands) and spread.shape == (linear + bands, n_freq)
    np.testing.assert_allclose(merge.sum(axis=0), 1.0, atol=1e-5)  # a band is a weighted mean of bins
    np.testing.assert_allclose(spread.sum(axis=0), 1.0, atol=1e-5)  # a bin is a weighted mean of bands
    np.testing.assert_array_equal(merge[:linear, :linear], np.eye(linear))
    # bands are narrow at the bottom and wide at the top (ERB spacing)
    widths = (merge[linear:, linear:] > 0).sum(axis=0)
    assert widths[0] < widths[-1]


def test_too_many_bands_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        band_matrices(257, 200, 64)


@pytest.mark.parametrize("lookahead", [0, 1, 2, 5])
def test_time_padding_spends_at_most_the_lookahead(lookahead: int) -> None:
    dilations = (1, 2, 4, 8, 1, 2, 4, 8)
    pads = time_padding(dilations, 3, lookahead)
    assert all(p + f == 2 * d for (p, f), d in zip(pads, dilations))  # every kernel keeps its span
    assert sum(f for _, f in pads) == lookahead  # reachable with dilation-1 blocks


@pytest.mark.parametrize("complex_mask", [True, False])
@pytest.mark.parametrize("frames", [1, 7, 64])
def test_any_frame_count_and_both_output_kinds(complex_mask: bool, frames: int) -> None:
    keras.utils.set_random_seed(0)
    net = build_bandnet(257, BandConfig(**TINY), complex_mask=complex_mask)
    x = np.random.default_rng(0).uniform(0, 1, (2, 257, frames, 3 if complex_mask else 1)).astype(np.float32)
    y = np.asarray(net(x))
    assert y.shape == (2, 257, frames, 2 if complex_mask else 1)
    if complex_mask:
        assert np.all(np.hypot(y[..., 0], y[..., 1]) <= 1.0 + 1e-6)  # bounded complex mask (tanh saturates to 1.0 in float32)
    else:
        assert np.all((y >= 0) & (y <= 1))


@pytest.mark.parametrize("blocks", [{}, {"context": (1, 2)}, {"context": (1, 2), "decoder_context": (1, 2)},
                                    {"context": (1, 2), "decoder_context": (1,), "context_separable": True},
                                    {"context": (1,), "output_context": (1, 2), "context_separable": True},
                                    {"context": (1,), "dual_path": 5, "kernel_time": 5}],
                         ids=["plain", "context", "decoder-context", "separable-context", "output-context", "dual-path"])
@pytest.mark.parametrize("lookahead", [0, 2, None])
def test_output_at_frame_t_ignores_input_after_t_plus_lookahead(lookahead: int | None, blocks: dict[str, Any]) -> None:
    config = BandConfig(**TINY, lookahead=lookahead, **blocks)
    net = build_bandnet(257, config)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (1, 257, 60, 3)).astype(np.float32)
    future = receptive_future(config)
    reach = (config.kernel_time - 1) // 2 * sum(TINY["dilations"])
    assert future == (reach if lookahead is None else lookahead)
    t = 30
    changed = x.copy()
    changed[:, :, t + future + 1 :] = rng.uniform(0, 1, changed[:, :, t + future + 1 :].shape)
    a, b = np.asarray(net(x)), np.asarray(net(changed))
    np.testing.assert_array_equal(a[:, :, : t + 1], b[:, :, : t + 1])  # up to frame t: untouched
    assert np.abs(a[:, :, t + 1 :] - b[:, :, t + 1 :]).max() > 0  # and the change does reach later frames
    # the bound is tight: a change at frame t + future moves the output at frame t
    edge = x.copy()
    edge[:, :, t + future] += 0.5
    assert np.abs(np.asarray(net(edge))[:, :, t] - a[:, :, t]).max() > 0


def test_context_blocks_look_back_and_add_no_lookahead() -> None:
    plain = build_bandnet(257, BandConfig(**TINY, lookahead=0))
    config = BandConfig(**TINY, lookahead=0, context=(1, 2))
    net = build_bandnet(257, config)
    assert net.count_params() > plain.count_params()
    assert receptive_future(config) == 0
    # the causal blocks read (3 - 1) * d frames back at each of the two encoder levels
    assert [tuple(net.get_layer(f"enc{i}_ctx{k}_tpad").padding[0]) for i in range(2) for k in range(2)] == [(2, 0), (4, 0)] * 2


def assert_reach_ahead_is(net: keras.Model, future: int, frames: int = 80, t: int = 20) -> None:
    """The output up to frame t ignores every input frame after t + future, and a change at t + future moves frame t."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (1, 257, frames, 3)).astype(np.float32)
    a = np.asarray(net(x))
    changed = x.copy()
    changed[:, :, t + future + 1 :] = rng.uniform(0, 1, changed[:, :, t + future + 1 :].shape)
    np.testing.assert_array_equal(np.asarray(net(changed))[:, :, : t + 1], a[:, :, : t + 1])
    edge = x.copy()
    edge[:, :, t + future] += 0.5
    assert np.abs(np.asarray(net(edge))[:, :, t] - a[:, :, t]).max() > 0


@pytest.mark.parametrize("separable", [False, True])
def test_centred_context_blocks_bound_the_output_by_their_reach_ahead(separable: bool) -> None:
    config = BandConfig(**TINY, lookahead=None, context=(1, 2), decoder_context=(1,), context_centred=True, context_separable=separable)
    net = build_bandnet(257, config)
    assert [tuple(net.get_layer(f"enc0_ctx{k}_tpad").padding[0]) for k in range(2)] == [(1, 1), (2, 2)]
    # two encoder levels of (1 + 2) frames, the temporal blocks' centred kernels, one inner decoder level's 1
    future = receptive_future(config)
    assert future == 2 * 3 + sum(TINY["dilations"]) + 1
    assert_reach_ahead_is(net, future)


def test_centred_context_blocks_need_unbounded_lookahead() -> None:
    with pytest.raises(ValueError, match="lookahead None"):
        build_bandnet(257, BandConfig(**TINY, lookahead=2, context=(1,), context_centred=True))


def test_decoder_context_blocks_follow_every_decoder_level_but_the_output_one() -> None:
    net = build_bandnet(257, BandConfig(**{**TINY, "channels": (4, 5, 6)}, decoder_context=(1, 2)))
    names = {layer.name for layer in net.layers if layer.name.startswith("dec") and layer.name.endswith("_tpad")}
    assert names == {f"dec{i}_ctx{k}_tpad" for i in (1, 2) for k in (0, 1)}
    assert [tuple(net.get_layer(f"dec1_ctx{k}_tpad").padding[0]) for k in range(2)] == [(2, 0), (4, 0)]


@pytest.mark.parametrize("separable", [False, True])
def test_output_context_blocks_follow_the_output_level_at_full_band_resolution(separable: bool) -> None:
    config = BandConfig(**TINY, output_context=(1, 2), context_separable=separable)
    net = build_bandnet(257, config)
    names = {layer.name for layer in net.layers if layer.name.startswith("dec") and layer.name.endswith("_tpad")}
    assert names == {"dec0_ctx0_tpad", "dec0_ctx1_tpad"}
    assert [tuple(net.get_layer(f"dec0_ctx{k}_tpad").padding[0]) for k in range(2)] == [(2, 0), (4, 0)]
    # the blocks see every band the output convolution reads (129 padded to a multiple of 4), with the first level's channels
    assert net.get_layer("dec0_ctx0_res").output.shape[2:] == (132, TINY["channels"][0])
    assert net.count_params() > build_bandnet(257, BandConfig(**TINY)).count_params()


def test_output_context_blocks_can_stay_full_in_a_separable_network() -> None:
    net = build_bandnet(257, BandConfig(**TINY, context=(1,), output_context=(1,), context_separable=True, output_context_full=True))
    names = {layer.name for layer in net.layers}
    assert "enc0_ctx0_dw" in names and "dec0_ctx0_dw" not in names
    assert net.get_layer("dec0_ctx0_conv").kernel.shape == (3, 3, TINY["channels"][0], TINY["channels"][0])


def test_centred_output_context_blocks_add_their_reach_ahead_once() -> None:
    config = BandConfig(**TINY, lookahead=None, output_context=(2,), context_centred=True)
    assert receptive_future(config) == sum(TINY["dilations"]) + 2
    assert_reach_ahead_is(build_bandnet(257, config), receptive_future(config))


def test_the_activation_is_an_option() -> None:
    net = build_bandnet(257, BandConfig(**TINY, context=(1,), activation="relu"))
    acts = {layer.get_config()["activation"] for layer in net.layers if layer.name.endswith("_act")}
    assert acts == {"relu"}


def test_separable_context_blocks_are_a_depthwise_then_a_pointwise_convolution() -> None:
    sizes = {"channels": (16, 24), "bottleneck": 16, "dilations": (1,), "context": (1, 2)}
    full = build_bandnet(257, BandConfig(**sizes))
    separable = build_bandnet(257, BandConfig(**sizes, context_separable=True))
    dw, pw = separable.get_layer("enc1_ctx1_dw"), separable.get_layer("enc1_ctx1_conv")
    assert dw.kernel.shape == (3, 3, 24, 1) and dw.dilation_rate == (2, 1) and pw.kernel.shape == (1, 1, 24, 24)
    assert full.get_layer("enc1_ctx1_conv").kernel.shape == (3, 3, 24, 24)
    per_block = {n: sum(int(np.prod(w.shape)) for layer in net.layers if "_ctx" in layer.name for w in layer.weights)
                 for n, net in (("full", full), ("separable", separable))}
    assert per_block["separable"] < per_block["full"] / 5


def test_full_context_levels_keep_full_blocks_in_a_separable_network() -> None:
    sizes = {"channels": (16, 24), "bottleneck": 16, "dilations": (1,), "context": (1, 2), "context_separable": True}
    hybrid = build_bandnet(257, BandConfig(**sizes, context_full_levels=(1,)))
    names = {layer.name for layer in hybrid.layers}
    assert {"enc0_ctx0_dw", "enc0_ctx1_dw"} <= names and not any(n.startswith("enc1_ctx") and n.endswith("_dw") for n in names)
    assert hybrid.get_layer("enc1_ctx1_conv").kernel.shape == (3, 3, 24, 24)
    assert hybrid.get_layer("enc0_ctx1_conv").kernel.shape == (1, 1, 16, 16)
    for bad in ({"context_full_levels": (2,)}, {"context_full_levels": (0,), "context_separable": False}):
        with pytest.raises(ValueError, match="context_full_levels"):
            build_bandnet(257, BandConfig(**{**sizes, **bad}))


def test_an_even_context_frequency_kernel_is_refused() -> None:
    with pytest.raises(ValueError, match="frequency taps odd"):
        build_bandnet(257, BandConfig(**TINY, context=(1,), context_kernel=(3, 4)))


@pytest.mark.parametrize("lookahead,df_lookahead", [(2, 2), (0, 2), (3, 1)])
def test_a_deep_filter_network_bounds_the_lookahead_of_the_enhanced_spectrum(lookahead: int, df_lookahead: int) -> None:
    """Through the whole contract (input features, network, deep filter and mask), the
    enhanced frame t ignores noisy frames after t + max(network lookahead, filter lookahead)."""
    spec = S.SignalSpec(output="complex_mask", df_bins=65, df_order=4, df_lookahead=df_lookahead).with_stats(0.0, 3.0)
    net = build_bandnet(257, BandConfig(**TINY, lookahead=lookahead), df_bins=65, df_order=4, df_past=spec.df_past)
    rng = np.random.default_rng(2)
    spectrum = (rng.normal(size=(257, 40)) + 1j * rng.normal(size=(257, 40))).astype(np.complex64)

    def enhance(x: np.ndarray) -> np.ndarray:
        out = np.asarray(net(S.network_input(x, spec)[np.newaxis]))[0]
        assert out.shape == (257, 40, spec.output_channels) and np.all(out[65:, :, 2:] == 0)
        return S.apply_output(x, out, spec)

    future, t = max(lookahead, df_lookahead), 20
    changed = spectrum.copy()
    changed[:, t + future + 1:] *= 3.0
    a, b = enhance(spectrum), enhance(changed)
    np.testing.assert_array_equal(a[:, : t + 1], b[:, : t + 1])
    edge = spectrum.copy()
    edge[:, t + future] *= 3.0
    assert np.abs(enhance(edge)[:, t] - a[:, t]).max() > 0  # and the bound is tight


def test_a_deep_filter_needs_a_complex_mask_and_at_most_every_bin() -> None:
    with pytest.raises(ValueError, match="deep filter"):
        build_bandnet(257, BandConfig(**TINY), complex_mask=False, df_bins=65)
    with pytest.raises(ValueError, match="deep filter"):
        build_bandnet(257, BandConfig(**TINY), df_bins=258)


def test_deep_filter_taps_past_the_linear_bins_are_spread_from_bands_as_the_mask_is() -> None:
    """With ``df_bins`` beyond the linear bins, the taps are computed per band and spread to
    bins by the band layout's spread matrix, then cropped to ``df_bins`` and bounded."""
    net = build_bandnet(257, BandConfig(**TINY), df_bins=129, df_order=5, df_past=2)
    names = [layer.name for layer in net.layers]
    assert names.index("df_bands") < names.index("df_spread") < names.index("df_crop") < names.index("df_taps")
    rng = np.random.default_rng(3)
    net.set_weights([w + 0.2 * rng.standard_normal(w.shape).astype(np.float32) for w in net.get_weights()])
    x = rng.uniform(0, 1, (1, 257, 12, 3)).astype(np.float32)
    inner = keras.Model(net.input, [net.get_layer("df_bands").output, net.get_layer("df_crop").output])
    per_band, per_bin = (np.asarray(t) for t in inner(x))  # (B, T, bands, 10), (B, T, 129, 10)
    spread = band_matrices(257, BandConfig().linear_bins, BandConfig().bands)[1]
    np.testing.assert_allclose(per_bin, np.einsum("btkc,kf->btfc", per_band, spread[:, :129]), atol=1e-5)
    out = np.asarray(net(x))
    assert out.shape == (1, 257, 12, 12)
    assert np.abs(out[:, 100:129, :, 2:]).max() > 0.1 and np.all(out[:, 129:, :, 2:] == 0)


@pytest.mark.parametrize("frames", [1, 9])
def test_a_dual_path_bottleneck_keeps_the_band_axis(frames: int) -> None:
    config = BandConfig(**TINY, dual_path=5)
    net = build_bandnet(257, config)
    names = {layer.name for layer in net.layers}
    assert "flatten_freq" not in names and "bn_in" not in names
    assert {f"dp{j}_fmix" for j in range(len(TINY["dilations"]))} <= names
    bands = int(net.get_layer("dp0_fmix").units)
    assert bands == int(net.get_layer("dp_in").output.shape[2])  # one mix of every band of the last level
    assert tuple(net.get_layer("dp_out").output.shape[2:]) == (bands, TINY["channels"][-1])
    x = np.random.default_rng(2).uniform(0, 1, (2, 257, frames, 3)).astype(np.float32)
    assert np.asarray(net(x)).shape == (2, 257, frames, 2)
