"""The shared signal contract: round trips, padding, chunking, mixing."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from denoise_core import signal as S

SPECS = [
    S.SignalSpec(),
    S.SignalSpec(n_fft=1199, hop_length=304, magnitude="db", output="magnitude", frame_multiple=8),
    S.SignalSpec(output="complex_mask"),
]
IDS = ["default", "seed", "complex"]


def pass_through(spec: S.SignalSpec) -> S.Predict:
    """A network that leaves the input unchanged under ``spec``'s output kind."""
    if spec.output == "mask":
        return lambda b: np.ones_like(b)
    if spec.output == "complex_mask":
        return lambda b: np.stack([np.ones_like(b[..., 0]), np.zeros_like(b[..., 0])], axis=-1)
    return lambda b: b


def tone(seconds: float, sr: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_stft_round_trip_is_exact(spec: S.SignalSpec) -> None:
    wave = np.random.default_rng(0).normal(0, 0.1, 16000 * 2).astype(np.float32)
    back = S.istft(S.stft(wave, spec), spec, length=wave.shape[0])
    assert np.max(np.abs(back - wave)) < 1e-5
    assert S.stft(wave, spec).shape == (spec.n_freq, S.n_frames(wave.shape[0], spec))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@pytest.mark.parametrize("n", [1, 303, 304, 1216, 1217, 16000])
def test_frame_count_matches_the_stft(spec: S.SignalSpec, n: int) -> None:
    """Including odd n_fft with a length that is a whole number of hops (1216 = 4 x 304)."""
    if not spec.center and n < spec.n_fft:
        pytest.skip("an uncentred STFT needs at least n_fft samples")
    wave = np.random.default_rng(n).normal(0, 0.1, n).astype(np.float32)
    assert S.stft(wave, spec).shape[-1] == S.n_frames(n, spec)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_features_invert_and_normalise(spec: S.SignalSpec) -> None:
    spec = spec.with_stats(-3.0, 7.0)
    mag = np.abs(np.random.default_rng(1).normal(0, 1, (spec.n_freq, 20))).astype(np.float32) + 1e-3
    feats = S.magnitude_features(mag, spec)
    np.testing.assert_allclose(S.features_to_magnitude(feats, spec), mag, rtol=1e-4)
    np.testing.assert_allclose(S.denormalise(S.normalise(feats, spec), spec), feats, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("frames,multiple,expected", [(1, 8, 8), (8, 8, 8), (9, 8, 16), (37, 1, 37)])
def test_pad_frames_to_legal_multiple(frames: int, multiple: int, expected: int) -> None:
    padded, original = S.pad_frames(np.ones((5, frames), np.float32), multiple)
    assert padded.shape == (5, expected) and original == frames
    assert S.valid_frames(frames, multiple) == expected
    assert np.all(padded[:, frames:] == 0.0)


def test_pad_frames_pads_the_axis_it_is_given() -> None:
    padded, original = S.pad_frames(np.ones((3, 5, 2), np.float32), 4, axis=1)
    assert padded.shape == (3, 8, 2) and original == 5
    assert np.all(padded[:, 5:] == 0.0) and np.all(padded[:, :5] == 1.0)


def test_the_layouts_round_trip_and_travel_in_the_contract() -> None:
    batch = np.random.default_rng(5).normal(size=(2, 257, 9, 3))
    first = S.to_model_layout(batch, "channels_first")
    assert first.shape == (2, 3, 9, 257) and first.flags.c_contiguous and first.dtype == np.float32
    np.testing.assert_array_equal(S.from_model_layout(first, "channels_first"), batch.astype(np.float32))
    assert S.to_model_layout(batch, "channels_last").shape == batch.shape
    spec = S.SignalSpec(output="complex_mask", layout="channels_first")
    assert S.SignalSpec.from_dict(spec.to_dict()) == spec
    assert S.SignalSpec.from_dict({}).layout == "channels_last"  # files written before the field
    with pytest.raises(ValueError, match="layout"):
        S.to_model_layout(batch, "frames_first")  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_pass_through_network_returns_input(spec: S.SignalSpec) -> None:
    identity = pass_through(spec)
    spec = spec.with_stats(-100.0, 50.0) if spec.magnitude == "db" else spec.with_stats(0.0, 5.0)
    wave = tone(1.3, 16000)
    out = S.enhance_wave(wave, spec, identity)
    assert out.shape == wave.shape
    assert np.max(np.abs(out - wave)) < 1e-3


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_network_input_has_the_channels_the_output_kind_needs(spec: S.SignalSpec) -> None:
    spec = spec.with_stats(0.0, 5.0)
    spectrum = S.stft(np.random.default_rng(3).normal(0, 0.1, 8000).astype(np.float32), spec)
    net_in = S.network_input(spectrum, spec)
    assert net_in.shape == (*spectrum.shape, spec.input_channels) and net_in.dtype == np.float32
    np.testing.assert_allclose(net_in[..., 0], S.normalise(S.magnitude_features(np.abs(spectrum), spec), spec), rtol=1e-6)
    if spec.output == "complex_mask":
        # channels 1-2: the compressed spectrum, same phase, magnitude |X|^p over the normalisation range
        compressed = net_in[..., 1] + 1j * net_in[..., 2]
        np.testing.assert_allclose(np.abs(compressed), np.abs(spectrum) ** spec.compress_exponent / 5.0, rtol=1e-4, atol=1e-6)
        strong = np.abs(spectrum) > 1e-3
        np.testing.assert_allclose(np.angle(compressed[strong] * np.conj(spectrum[strong])), 0.0, atol=1e-4)


def test_complex_mask_changes_the_phase() -> None:
    """Multiplying every bin by i turns a sine into a cosine: the phase is the network's."""
    spec = S.SignalSpec(output="complex_mask").with_stats(0.0, 5.0)
    wave = tone(1.0, 16000)
    times_i = lambda b: np.stack([np.zeros_like(b[..., 0]), np.ones_like(b[..., 0])], axis=-1)  # noqa: E731
    out = S.enhance_wave(wave, spec, times_i)
    t = np.arange(wave.shape[0]) / 16000
    inner = slice(spec.n_fft, -spec.n_fft)
    np.testing.assert_allclose(out[inner], (0.3 * np.cos(2 * np.pi * 440.0 * t))[inner], atol=1e-3)


def test_chunked_enhancement_matches_one_pass() -> None:
    spec = S.SignalSpec()
    rng = np.random.default_rng(2)
    wave = rng.normal(0, 0.1, 16000 * 12).astype(np.float32)

    def smooth_mask(batch: np.ndarray) -> np.ndarray:  # a content-dependent, time-local "network"
        return 1.0 / (1.0 + np.exp(-(batch - 0.2) * 8))

    whole = S.enhance_wave(wave, spec, smooth_mask)
    chunked = S.enhance_long(wave, spec, smooth_mask, chunk_seconds=4.0, overlap_seconds=0.5)
    assert chunked.shape == wave.shape
    err = np.sqrt(np.mean((whole - chunked) ** 2)) / np.sqrt(np.mean(whole**2))
    assert err < 1e-4  # chunk steps on the hop grid: only the cross-fades differ


@pytest.mark.parametrize("n", [100, 16000 * 4, 16000 * 4 + 1, 16000 * 9 - 7])
def test_chunk_spans_cover_input(n: int) -> None:
    plan = S.ChunkPlan(chunk=16000 * 4, overlap=8000)
    spans = plan.spans(n)
    assert spans[0][0] == 0 and spans[-1][1] == n
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        assert b0 == a1 - plan.overlap and b1 - b0 > plan.overlap


@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0])
def test_mix_at_snr(snr: float) -> None:
    rng = np.random.default_rng(3)
    speech, noise = rng.normal(0, 0.2, 16000).astype(np.float32), rng.normal(0, 0.05, 8000).astype(np.float32)
    mixture, scaled = S.mix_at_snr(speech, S.fit_length(noise, 16000), snr)
    assert abs(S.snr_db(speech, scaled) - snr) < 1e-3
    np.testing.assert_allclose(mixture, speech + scaled, atol=1e-6)


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_decode_any_rate_and_subtype(sr: int, subtype: str) -> None:
    buf = io.BytesIO()
    sf.write(buf, np.stack([tone(0.5, sr), tone(0.5, sr, 300)], axis=1), sr, subtype=subtype, format="WAV")
    audio, rate = S.decode_audio(buf.getvalue())
    assert rate == sr and audio.shape == (sr // 2, 2) and audio.dtype == np.float32
    mono = S.resample(S.to_mono(audio), sr, 16000)
    assert abs(mono.shape[0] - 8000) <= 1


@pytest.mark.parametrize("payload", [b"", b"RIFF\x00\x00", np.random.default_rng(4).bytes(2048)])
def test_decode_rejects_non_audio(payload: bytes) -> None:
    with pytest.raises(S.AudioDecodeError):
        S.decode_audio(payload)


def test_decode_rejects_nan() -> None:
    buf = io.BytesIO()
    data = tone(0.1, 16000)
    data[10] = np.nan
    sf.write(buf, data, 16000, subtype="FLOAT", format="WAV")
    with pytest.raises(S.AudioDecodeError, match="NaN"):
        S.decode_audio(buf.getvalue())


def test_the_post_filter_lowers_gains_below_one_and_keeps_the_rest() -> None:
    gains = np.array([0.0, 0.1, 0.3, 0.6, 0.9, 1.0, 1.3], np.float32)
    filtered = S.post_filter_gain(gains, 0.05)
    assert filtered[0] == 0.0 and np.all(filtered[1:5] < gains[1:5]) and np.all(filtered[5:] == gains[5:])
    assert np.all(np.diff(filtered) > 0)  # the order of the gains is kept
    assert filtered[1] / gains[1] < filtered[3] / gains[3]  # the lower the gain, the more it is lowered
    np.testing.assert_allclose(S.post_filter_gain(gains, 0.0), gains)


@pytest.mark.parametrize("output", ["mask", "complex_mask"])
def test_the_post_filter_in_the_contract_scales_a_mask_and_keeps_its_phase(output: str) -> None:
    spec = S.SignalSpec(output=output, post_filter=0.1)
    rng = np.random.default_rng(0)
    spectrum = (rng.normal(size=(257, 6)) + 1j * rng.normal(size=(257, 6))).astype(np.complex64)
    gain = rng.uniform(0.05, 0.95, (257, 6)).astype(np.float32)
    if output == "mask":
        net_out = gain[..., None]
    else:  # a complex mask of modulus ``gain`` and phase 0.7 rad
        net_out = np.stack([gain * np.cos(0.7), gain * np.sin(0.7)], axis=-1).astype(np.float32)
    plain = S.apply_output(spectrum, net_out, S.SignalSpec(output=output))
    filtered = S.apply_output(spectrum, net_out, spec)
    np.testing.assert_allclose(np.abs(filtered), np.abs(spectrum) * S.post_filter_gain(gain, 0.1), rtol=1e-4)
    np.testing.assert_allclose(np.angle(filtered * np.conj(plain)), 0.0, atol=1e-4)


def test_the_post_filter_travels_in_the_contract() -> None:
    spec = S.SignalSpec(output="complex_mask", post_filter=0.02)
    assert S.SignalSpec.from_dict(spec.to_dict()).post_filter == 0.02
    assert S.SignalSpec.from_dict({k: v for k, v in spec.to_dict().items() if k != "post_filter"}).post_filter == 0.0


@pytest.mark.parametrize("past,order", [(0, 1), (2, 5), (4, 5)])
def test_the_deep_filter_sums_its_taps_over_neighbouring_frames(past: int, order: int) -> None:
    rng = np.random.default_rng(3)
    spectrum = (rng.normal(size=(4, 9)) + 1j * rng.normal(size=(4, 9))).astype(np.complex64)
    current = np.zeros((4, 9, order), np.complex64)
    current[..., past] = 1.0
    np.testing.assert_allclose(S.deep_filter(spectrum, current, past), spectrum)  # the current frame's tap alone
    for k in range(order):
        taps = np.zeros((4, 9, order), np.complex64)
        taps[..., k] = 0.5j
        shifted = np.zeros_like(spectrum)
        offset = k - past  # this tap reads frame t + offset, zeros beyond either end
        src = slice(max(offset, 0), 9 + min(offset, 0))
        dst = slice(max(-offset, 0), 9 - max(offset, 0))
        shifted[:, dst] = spectrum[:, src]
        np.testing.assert_allclose(S.deep_filter(spectrum, taps, past), 0.5j * shifted, atol=1e-6)


@pytest.mark.parametrize("past,order", [(2, 5), (0, 3), (3, 4)])
def test_a_deep_filter_in_pieces_with_their_neighbouring_frames_equals_it_in_one(past: int, order: int) -> None:
    rng = np.random.default_rng(5)
    spectrum = (rng.normal(size=(2, 6, 20)) + 1j * rng.normal(size=(2, 6, 20))).astype(np.complex64)
    taps = (rng.normal(size=(2, 6, 20, order)) + 1j * rng.normal(size=(2, 6, 20, order))).astype(np.complex64)
    whole = S.deep_filter(spectrum, taps, past)
    future = order - 1 - past
    padded = np.pad(spectrum, ((0, 0), (0, 0), (past, future)))
    for a, b in [(0, 1), (1, 8), (8, 19), (19, 20)]:
        piece = S.deep_filter(spectrum[..., a:b], taps[..., a:b, :], past,
                              before=padded[..., a:a + past], after=padded[..., past + b:past + b + future])
        np.testing.assert_allclose(piece, whole[..., a:b], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="frames before"):
        S.deep_filter(spectrum, taps, past, before=np.zeros((2, 6, past + 1), np.complex64))


def test_a_deep_filter_replaces_the_complex_mask_on_the_lowest_bins_only() -> None:
    spec = S.SignalSpec(output="complex_mask", df_bins=3, df_order=3, df_lookahead=1)
    assert spec.output_channels == 8 and spec.df_past == 1
    rng = np.random.default_rng(4)
    spectrum = (rng.normal(size=(257, 7)) + 1j * rng.normal(size=(257, 7))).astype(np.complex64)
    net_out = rng.uniform(-1, 1, (257, 7, 8)).astype(np.float32)
    clean = S.apply_output(spectrum, net_out, spec)
    plain = S.apply_output(spectrum, net_out[..., :2], S.SignalSpec(output="complex_mask"))
    np.testing.assert_allclose(clean[3:], plain[3:])
    taps = net_out[:3, :, 2:].copy().view(np.complex64)
    np.testing.assert_allclose(clean[:3], S.deep_filter(spectrum[:3], taps, 1), rtol=1e-5)
    batched = S.apply_output(np.stack([spectrum, 2 * spectrum]), np.stack([net_out, net_out]), spec)  # (channels, freq, frames)
    np.testing.assert_allclose(batched, np.stack([clean, 2 * clean]), rtol=1e-5, atol=1e-6)
    assert S.SignalSpec.from_dict(spec.to_dict()) == spec
    # the same output as its two parts, the taps of the filtered bins only
    parts = S.MaskAndTaps(net_out[..., :2].copy(), net_out[:3, :, 2:].copy())
    np.testing.assert_array_equal(S.apply_output(spectrum, parts, spec), clean)
    with pytest.raises(ValueError, match="deep-filter contract"):
        S.apply_output(spectrum, parts, S.SignalSpec(output="complex_mask"))


def test_run_network_crops_both_parts_of_a_mask_and_taps_output() -> None:
    spec = S.SignalSpec(output="complex_mask", df_bins=3, df_order=3, df_lookahead=1, frame_multiple=4)
    seen = []

    def predict(batch: np.ndarray) -> S.MaskAndTaps:
        seen.append(batch.shape)
        return S.MaskAndTaps(np.ones((1, 257, batch.shape[2], 2), np.float32), np.ones((1, 3, batch.shape[2], 6), np.float32))

    out = S.run_network(np.zeros((257, 10, 3), np.float32), spec, predict)
    assert seen == [(1, 257, 12, 3)]
    assert out.mask.shape == (257, 10, 2) and out.taps.shape == (3, 10, 6)
