"""The numpy/soxr STFT, inverse STFT and resampling match the librosa versions they replace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from denoise_core import signal as S

import librosa  # the reference implementation (training extra)  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-5

# (n_fft, hop, win_length, center); the first two are the project's real contracts
SETTINGS = [
    (512, 256, None, True),
    (1199, 304, None, True),
    (512, 128, 400, True),
    (256, 64, 255, True),
    (511, 100, None, False),
    (1024, 256, 900, False),
]
SETTING_IDS = ["default-512-256", "seed-1199-304", "win400", "odd-win255", "uncentred-511", "uncentred-win900"]
LENGTHS = [300, 1199, 4097, 16000 + 77]  # shorter than n_fft, not multiples of hop


def ref_stft(wave: np.ndarray, spec: S.SignalSpec) -> np.ndarray:
    return librosa.stft(
        np.asarray(wave, dtype=np.float32),
        n_fft=spec.n_fft,
        hop_length=spec.hop_length,
        win_length=spec.window_length,
        window=spec.window,
        center=spec.center,
        pad_mode="constant",
    ).astype(np.complex64)


def ref_istft(spectrum: np.ndarray, spec: S.SignalSpec, length: int) -> np.ndarray:
    return librosa.istft(
        spectrum,
        hop_length=spec.hop_length,
        win_length=spec.window_length,
        n_fft=spec.n_fft,
        window=spec.window,
        center=spec.center,
        length=length,
    ).astype(np.float32)


def ref_resample(wave: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return wave.astype(np.float32, copy=False)
    return librosa.resample(wave.astype(np.float32), orig_sr=sr_in, target_sr=sr_out, res_type="soxr_hq").astype(np.float32)


@pytest.fixture(scope="module")
def speech(shared_data: Path) -> np.ndarray:
    """Real speech at 16 kHz, peak-normalised to amplitude 1."""
    path = sorted((shared_data / "LibriSpeech").rglob("*.flac"))[0]
    wave, sr = sf.read(path, dtype="float32")
    assert sr == 16000
    wave = wave[16000 : 16000 * 4]
    return (wave / np.max(np.abs(wave))).astype(np.float32)


def spec_of(n_fft: int, hop: int, win: int | None, center: bool) -> S.SignalSpec:
    return S.SignalSpec(n_fft=n_fft, hop_length=hop, win_length=win, center=center)


@pytest.mark.filterwarnings("ignore:n_fft=.*is too large")
@pytest.mark.parametrize("setting", SETTINGS, ids=SETTING_IDS)
@pytest.mark.parametrize("length", LENGTHS)
def test_stft_and_istft_match_librosa(speech: np.ndarray, setting: tuple, length: int) -> None:
    spec = spec_of(*setting)
    if not spec.center and length < spec.n_fft:
        with pytest.raises(ValueError, match="too large"):
            S.stft(speech[:length], spec)
        return
    wave = speech[:length]
    ours, ref = S.stft(wave, spec), ref_stft(wave, spec)
    assert ours.dtype == np.complex64 and ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) < TOL
    for out_len in (length, length - 37, length + 500):  # exact, trimmed, zero-padded
        back = S.istft(ours, spec, out_len)
        assert back.dtype == np.float32 and back.shape == (out_len,)
        assert np.max(np.abs(back - ref_istft(ref, spec, out_len))) < TOL
    back = S.istft(ours, spec, length)
    if spec.center:
        assert np.max(np.abs(back - wave)) < TOL
    else:  # uncentred: samples covered by at least one frame reconstruct
        covered = spec.n_fft + spec.hop_length * (ours.shape[-1] - 1)
        edge = spec.n_fft // 4
        assert np.max(np.abs(back[edge : covered - edge] - wave[edge : covered - edge])) < TOL


@pytest.mark.parametrize("setting", SETTINGS[:2] + SETTINGS[4:5], ids=SETTING_IDS[:2] + SETTING_IDS[4:5])
def test_batch_equals_per_row(speech: np.ndarray, setting: tuple) -> None:
    spec = spec_of(*setting)
    batch = np.stack([speech[:9000], speech[5000:14000], 0.5 * speech[-9000:]])
    spectra = S.stft(batch, spec)
    assert spectra.shape == (3, spec.n_freq, S.stft(batch[0], spec).shape[-1])
    for row, spectrum in zip(batch, spectra):
        np.testing.assert_array_equal(spectrum, S.stft(row, spec))
    np.testing.assert_allclose(S.istft(spectra, spec, 9000), np.stack([S.istft(s, spec, 9000) for s in spectra]), atol=1e-7)


def test_only_hann_is_supported() -> None:
    with pytest.raises(ValueError, match="hann"):
        S.stft(np.zeros(2048, np.float32), S.SignalSpec(window="hamming"))


@pytest.mark.parametrize("sr_in,sr_out", [(8000, 16000), (44100, 16000), (16000, 48000)])
def test_resample_matches_librosa_soxr_hq(speech: np.ndarray, sr_in: int, sr_out: int) -> None:
    for wave in (speech, speech[:1001]):
        ours, ref = S.resample(wave, sr_in, sr_out), ref_resample(wave, sr_in, sr_out)
        assert ours.dtype == np.float32 and ours.shape == ref.shape
        assert np.max(np.abs(ours - ref)) < TOL


def test_resample_is_identity_at_equal_rates(speech: np.ndarray) -> None:
    out = S.resample(speech, 16000, 16000)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, speech)


@pytest.mark.parametrize("rate", [16000, 44100])
def test_shipped_model_output_matches_librosa_path(shared_data: Path, speech: np.ndarray, rate: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from denoise_core.model_file import OnnxModel

    rain_path = sorted((shared_data / "ESC-50" / "audio").glob("*-10.wav"))[0]
    rain, sr = sf.read(rain_path, dtype="float32", always_2d=True)
    rain = ref_resample(rain.mean(axis=1), sr, 16000)
    mixture, _ = S.mix_at_snr(0.5 * speech, S.fit_length(rain, speech.shape[0]), 5.0)
    audio = ref_resample(mixture, 16000, rate)[:, None]

    model = OnnxModel(ROOT / "models" / "denoiser.onnx", intra_op_threads=1)
    ours = model.denoise(audio, rate)
    with monkeypatch.context() as m:
        m.setattr(S, "stft", ref_stft)
        m.setattr(S, "istft", ref_istft)
        m.setattr(S, "resample", ref_resample)
        reference = model.denoise(audio, rate)
    assert ours.shape == audio.shape
    assert np.max(np.abs(ours - reference)) < 1e-4
