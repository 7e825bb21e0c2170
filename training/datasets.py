"""Training inputs read from a ``python -m training.data build`` directory.

Features always come from ``denoise_core.signal`` (the service's code). The seed
recipe trains on the fixed mixtures; the default model mixes fresh speech/noise
pairs with random crops, gains and SNRs for every batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from denoise_core.signal import SignalSpec, network_input, normalise, rms, stft, wave_features
from training.data.stats import feature_min_max
from training.synthetic_noise import synthetic_rain

SPLITS = ("train", "val", "test")


@dataclass
class SplitArrays:
    clean: np.ndarray
    noisy: np.ndarray
    lengths: np.ndarray
    #: speaker id of each segment (None for arrays built without one)
    speakers: np.ndarray | None = None

    def rows(self, start: int, count: int) -> "SplitArrays":
        """Segments ``start`` to ``start + count`` (fewer where the split ends)."""
        part = slice(start, start + count)
        return SplitArrays(clean=self.clean[part], noisy=self.noisy[part], lengths=self.lengths[part],
                           speakers=None if self.speakers is None else self.speakers[part])


@dataclass
class Dataset:
    """A built dataset directory."""

    root: Path
    stats: dict[str, Any]

    @classmethod
    def open(cls, root: str | Path) -> "Dataset":
        root = Path(root)
        stats_file = root / "stats.json"
        if not stats_file.exists():
            raise FileNotFoundError(f"{stats_file} not found: build the dataset with `python -m training.data build` first")
        return cls(root=root, stats=json.loads(stats_file.read_text()))

    def split(self, name: str) -> SplitArrays:
        with np.load(self.root / f"{name}.npz") as z:
            return SplitArrays(clean=z["clean"], noisy=z["noisy"], lengths=z["lengths"].astype(np.int64), speakers=z["speakers"])

    def noise(self, name: str) -> np.ndarray:
        with np.load(self.root / f"noise_{name}.npz") as z:
            return z["noise"]

    def noise_sources(self, name: str) -> np.ndarray | None:
        """The source recording of each noise clip of a split, as ``category:src_file``
        (None for a build that did not record them)."""
        with np.load(self.root / f"noise_{name}.npz") as z:
            if "src_files" not in z.files:
                return None
            return np.char.add(np.char.add(z["categories"].astype(str), ":"), z["src_files"].astype(str))

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.stats.get("summary", {}))


def training_stats(data: Dataset, spec: SignalSpec) -> tuple[float, float]:
    """Min-max statistics of noisy and clean training features (training split only).

    Re-uses the builder's ``stats.json`` when it was computed with the same STFT and
    representation; otherwise computes them for ``spec`` from the training arrays.
    """
    built = SignalSpec.from_dict(data.stats.get("signal", {}))
    same = all(getattr(built, k) == getattr(spec, k) for k in ("sample_rate", "n_fft", "hop_length", "window_length", "window", "center", "magnitude", "compress_exponent"))
    if same and "min" in data.stats:
        return float(data.stats["min"]), float(data.stats["max"])
    train = data.split("train")
    return feature_min_max([train.noisy, train.clean], spec)


def seed_arrays(waves: np.ndarray, spec: SignalSpec, batch: int = 64) -> np.ndarray:
    """Normalised features ``(N, freq, frames, 1)`` of waveforms, as the seed trains on."""
    out = [normalise(wave_features(waves[i : i + batch], spec), spec) for i in range(0, len(waves), batch)]
    return np.concatenate(out)[..., np.newaxis].astype(np.float32)


def signal_batch(noisy: np.ndarray, clean: np.ndarray, spec: SignalSpec) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Model inputs and targets for the signal-domain objective.

    Inputs: the network input of the noisy mixture and the noisy complex STFT (for the
    mask and the inverse STFT inside the training graph). Targets: the clean waveform
    and the clean normalised features.
    """
    spectrum = stft(noisy, spec)
    clean_feats = normalise(wave_features(clean, spec), spec)
    inputs = {"features": network_input(spectrum, spec), "real": spectrum.real.astype(np.float32), "imag": spectrum.imag.astype(np.float32)}
    targets = {"wave": clean.astype(np.float32), "mag": clean_feats[..., np.newaxis]}
    return inputs, targets


def frames_length(seconds: float, spec: SignalSpec) -> int:
    """Samples in a crop of about ``seconds`` that is a whole number of hops."""
    return int(round(seconds * spec.sample_rate / spec.hop_length)) * spec.hop_length


@dataclass
class MixerConfig:
    """How fresh mixtures are drawn. The noise augmentations stretch the few training
    noise recordings (a few minutes of rain and thunder) towards unseen ones; the speech
    ones (off unless a preset or ``--mixer-options`` turns them on) do the same for speakers."""

    crop_seconds: float = 3.0
    snr_low: float = -7.5
    snr_high: float = 15.0
    level_low_db: float = -35.0
    level_high_db: float = -12.0
    second_noise_prob: float = 0.3
    #: probability of resampling a noise clip by a random speed factor in ``speed_range``
    speed_prob: float = 0.5
    speed_range: tuple[float, float] = (0.8, 1.25)
    #: probability of a random smooth equaliser of up to ``eq_db`` dB on a noise clip
    eq_prob: float = 0.5
    eq_db: float = 8.0
    eq_bands: int = 6
    #: the same two augmentations on the speech crop (the target follows them), standing in
    #: for more speakers and microphones than the training split has
    speech_speed_prob: float = 0.0
    speech_speed_range: tuple[float, float] = (0.9, 1.1)
    speech_eq_prob: float = 0.0
    speech_eq_db: float = 4.0
    #: how evenly speakers are drawn: a segment's weight is (its speaker's segment count) ** -balance,
    #: so 0 draws segments uniformly (speakers in proportion to their audio) and 1 draws speakers uniformly
    speaker_balance: float = 0.0
    #: probability of mixing synthetic rain-like noise (``training.synthetic_noise``) under the
    #: real noise, at a level drawn from ``synthetic_level_db`` relative to it
    synthetic_noise_prob: float = 0.0
    synthetic_level_db: tuple[float, float] = (-10.0, 0.0)
    #: how evenly noise recordings are drawn, as ``speaker_balance`` for speakers: a clip's weight
    #: is (its source recording's clip count) ** -balance, so one long recording cut into many
    #: clips is drawn less often than its share of the clips
    noise_balance: float = 0.0

    @classmethod
    def from_options(cls, crop_seconds: float, options: dict[str, Any]) -> "MixerConfig":
        """Config from command-line JSON options (unknown keys are an error)."""
        known = cls.__dataclass_fields__
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"unknown mixer options {unknown}; known: {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
        return cls(**{"crop_seconds": crop_seconds, **values})


def change_speed(wave: np.ndarray, factor: float, size: int | None = None) -> np.ndarray:
    """Play ``wave`` ``factor`` times faster (linear interpolation; pitch moves with it),
    into ``size`` samples when given (a crop of about ``size * factor`` samples)."""
    n_out = size if size is not None else max(2, int(round(len(wave) / factor)))
    positions = np.linspace(0, len(wave) - 1, n_out)
    return np.interp(positions, np.arange(len(wave)), wave)


def random_equaliser(wave: np.ndarray, rng: np.random.Generator, max_db: float, bands: int) -> np.ndarray:
    """Filter ``wave`` with a smooth random gain curve: ``bands`` gains in [-max_db, max_db]
    spaced evenly on a log-frequency axis, interpolated between them."""
    spectrum = np.fft.rfft(wave)
    bins = np.arange(len(spectrum), dtype=np.float64)
    anchors = np.geomspace(1.0, max(2.0, bins[-1]), bands)
    gains_db = rng.uniform(-max_db, max_db, bands)
    curve = np.interp(np.log(np.maximum(bins, 1.0)), np.log(anchors), gains_db)
    return np.fft.irfft(spectrum * 10 ** (curve / 20), n=len(wave))


def add_under(noise: np.ndarray, other: np.ndarray, level_db: float) -> np.ndarray:
    """``noise`` plus ``other`` scaled to ``level_db`` dB (RMS) against it."""
    return noise + other * (rms(noise) / rms(other)) * 10 ** (level_db / 20)


def group_weights(groups: np.ndarray, balance: float, what: str = "balance") -> np.ndarray | None:
    """Probability of drawing each item: proportional to (its group's item count) ** -balance
    (None for ``balance`` 0: every item equally likely)."""
    if balance == 0.0:
        return None
    if not 0.0 <= balance <= 1.0:
        raise ValueError(f"{what} must lie in [0, 1], got {balance}")
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    weights = counts[inverse].astype(np.float64) ** -balance
    return weights / weights.sum()


def speaker_weights(arrays: SplitArrays, balance: float) -> np.ndarray | None:
    """Probability of drawing each segment: proportional to (its speaker's segment count) ** -balance
    (None for ``balance`` 0: every segment equally likely).

    A few speakers hold most of the training audio; drawing them less often (``balance`` > 0)
    gives the many speakers with a segment or two more of the training signal.
    """
    if balance != 0.0 and arrays.speakers is None:
        raise ValueError("speaker_balance needs the speaker of each segment; rebuild the dataset")
    return group_weights(arrays.speakers, balance, "speaker_balance")


class OnTheFlyMixer:
    """Endless batches of fresh speech + noise mixtures from the training split.

    Each item: a random crop of a random speech segment (speakers weighted by
    ``speaker_balance``; optionally at a random speed
    and through a random equaliser, the target included), one or two random noise
    clips (recordings weighted by ``noise_balance``, which needs ``noise_sources``; random
    offset, polarity and direction; optionally a random speed and equaliser), optionally
    synthetic rain-like noise under them, an SNR drawn uniformly from the configured range and a
    random overall level.
    """

    def __init__(self, speech: SplitArrays, noise: np.ndarray, spec: SignalSpec, batch_size: int, seed: int, config: MixerConfig = MixerConfig(),
                 noise_sources: np.ndarray | None = None) -> None:
        self.speech, self.noise, self.spec, self.batch_size, self.config = speech, noise, spec, batch_size, config
        self.rng = np.random.default_rng(seed)
        self.length = frames_length(config.crop_seconds, spec)
        self.segment_weights = speaker_weights(speech, config.speaker_balance)
        if config.noise_balance != 0.0 and (noise_sources is None or len(noise_sources) != len(noise)):
            raise ValueError("noise_balance needs the source recording of each noise clip; rebuild the dataset")
        self.clip_weights = group_weights(noise_sources, config.noise_balance, "noise_balance") if noise_sources is not None else None

    def _speech(self) -> np.ndarray:
        cfg = self.config
        factor = self.rng.uniform(*cfg.speech_speed_range) if self.rng.random() < cfg.speech_speed_prob else 1.0
        wave = self._speech_crop(int(round(self.length * factor)))
        if factor != 1.0:
            wave = change_speed(wave, factor, size=self.length)
        if self.rng.random() < cfg.speech_eq_prob:
            wave = random_equaliser(wave, self.rng, cfg.speech_eq_db, cfg.eq_bands)
        return wave

    def _speech_crop(self, length: int) -> np.ndarray:
        n_segments = len(self.speech.lengths)
        i = self.rng.integers(n_segments) if self.segment_weights is None else self.rng.choice(n_segments, p=self.segment_weights)
        n = int(self.speech.lengths[i])
        wave = self.speech.clean[i, :n]
        if n <= length:
            return np.pad(wave, (0, length - n))
        start = self.rng.integers(0, n - length + 1)
        return wave[start : start + length]

    def _noise_clip(self) -> np.ndarray:
        """A crop of one noise clip, with its speed and equaliser augmentations.

        The crop (a circular window at a random offset, so clips shorter than the
        crop repeat) is cut before the augmentations, which then cost a crop's worth
        of samples rather than a whole clip's.
        """
        n_clips = len(self.noise)
        clip = self.noise[self.rng.integers(n_clips) if self.clip_weights is None else self.rng.choice(n_clips, p=self.clip_weights)]
        cfg = self.config
        factor = self.rng.uniform(*cfg.speed_range) if self.rng.random() < cfg.speed_prob else 1.0
        span = int(np.ceil(self.length * factor))
        piece = clip[(self.rng.integers(len(clip)) + np.arange(span)) % len(clip)]
        if factor != 1.0:
            piece = change_speed(piece, factor, size=self.length)
        if self.rng.random() < cfg.eq_prob:
            piece = random_equaliser(piece, self.rng, cfg.eq_db, cfg.eq_bands)
        if self.rng.random() < 0.5:
            piece = piece[::-1]
        return piece * self.rng.choice([-1.0, 1.0])

    def _noise(self) -> np.ndarray:
        noise = self._noise_clip()
        if self.rng.random() < self.config.second_noise_prob:
            other = self._noise_clip()
            noise = add_under(noise, other, self.rng.uniform(-10, 0))
        cfg = self.config
        # no draw at probability 0, so recipes without it keep their random stream
        if cfg.synthetic_noise_prob > 0 and self.rng.random() < cfg.synthetic_noise_prob:
            extra = synthetic_rain(noise.shape[0], self.rng, sr=self.spec.sample_rate)
            if self.rng.random() < cfg.eq_prob:
                extra = random_equaliser(extra, self.rng, cfg.eq_db, cfg.eq_bands)
            noise = add_under(noise, extra, self.rng.uniform(*cfg.synthetic_level_db))
        return noise

    def item(self) -> tuple[np.ndarray, np.ndarray]:
        speech = self._speech()
        noise = self._noise()
        snr = self.rng.uniform(self.config.snr_low, self.config.snr_high)
        noise = noise * (rms(speech) / (rms(noise) * 10 ** (snr / 20)))
        noisy = speech + noise
        level = 10 ** (self.rng.uniform(self.config.level_low_db, self.config.level_high_db) / 20)
        gain = level / rms(noisy)
        peak = np.max(np.abs(noisy)) * gain
        if peak > 0.99:
            gain *= 0.99 / peak
        return (noisy * gain).astype(np.float32), (speech * gain).astype(np.float32)

    def __iter__(self) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
        while True:
            pairs = [self.item() for _ in range(self.batch_size)]
            noisy = np.stack([p[0] for p in pairs])
            clean = np.stack([p[1] for p in pairs])
            yield signal_batch(noisy, clean, self.spec)


def fixed_signal_set(arrays: SplitArrays, spec: SignalSpec, seconds: float = 5.0, limit: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Inputs/targets of a split's fixed mixtures (validation), cropped to whole hops."""
    n = min(frames_length(seconds, spec), arrays.noisy.shape[1] // spec.hop_length * spec.hop_length)
    count = len(arrays.noisy) if limit is None else min(limit, len(arrays.noisy))
    return signal_batch(arrays.noisy[:count, :n], arrays.clean[:count, :n], spec)
