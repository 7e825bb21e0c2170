"""``python -m training.data build`` over the real shared data (built once per session)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from training.data.__main__ import main
from training.data.build import MANIFEST_COLUMNS
from training.data.stats import SEED_SPEC, feature_min_max

SPLITS = ("train", "val", "test")


def _build(shared: Path, out: Path, *extra: str) -> int:
    return main(["build", "--librispeech", str(shared / "LibriSpeech"), "--esc50", str(shared / "ESC-50"),
                 "--out", str(out), "--quiet", *extra])


def _manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def full_build(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dataset") / "full"
    assert _build(shared_data, out, "--segment", "--seed", "0") == 0
    return out


@pytest.fixture(scope="session")
def arrays(full_build: Path) -> dict[str, dict[str, np.ndarray]]:
    return {s: dict(np.load(full_build / f"{s}.npz")) for s in SPLITS}


def test_full_build_has_enough_mixtures_and_prints_summary(full_build: Path, arrays, capsys) -> None:
    total = sum(a["clean"].shape[0] for a in arrays.values())
    assert total >= 1000
    stats = json.loads((full_build / "stats.json").read_text())
    assert sum(stats["summary"][s]["mixtures"] for s in SPLITS) == total
    assert stats["summary"]["skipped_corrupt"] == 0
    # minutes close to 80/10/10 although three speakers hold ~70 % of the audio
    minutes = np.array([stats["summary"][s]["minutes"] for s in SPLITS])
    assert np.allclose(minutes / minutes.sum(), [0.8, 0.1, 0.1], atol=0.03)
    for split, a in arrays.items():
        assert a["clean"].shape == a["noisy"].shape == (a["lengths"].shape[0], 80000)
        assert a["clean"].dtype == a["noisy"].dtype == np.float32
        assert a["lengths"].dtype == a["speakers"].dtype == np.int32
        assert a["lengths"].min() >= 3 * 16000 and a["lengths"].max() <= 5 * 16000
        # zero padding after the speech
        idx = int(np.argmin(a["lengths"]))
        assert not a["clean"][idx, a["lengths"][idx]:].any()


def test_no_speaker_and_no_noise_source_in_two_splits(full_build: Path, arrays) -> None:
    speakers = {s: set(arrays[s]["speakers"].tolist()) for s in SPLITS}
    stats = json.loads((full_build / "stats.json").read_text())
    for s in SPLITS:
        assert speakers[s], s
        assert speakers[s] == set(stats["summary"][s]["speakers"]["ids"])
    assert not (speakers["train"] & speakers["val"] or speakers["train"] & speakers["test"]
                or speakers["val"] & speakers["test"])
    srcs = {}
    for s in SPLITS:
        noise = np.load(full_build / f"noise_{s}.npz")
        assert noise["noise"].shape == (noise["files"].shape[0], 80000)
        assert set(noise["categories"].tolist()) == {"rain", "thunderstorm"}
        srcs[s] = {(c, f) for c, f in zip(noise["categories"].tolist(), noise["src_files"].tolist())}
    assert not (srcs["train"] & srcs["val"] or srcs["train"] & srcs["test"] or srcs["val"] & srcs["test"])
    rows = _manifest(full_build)
    for r in rows:  # every mixture uses noise of its own split
        assert (r["noise_category"], r["noise_src_file"]) in srcs[r["split"]]
        assert int(r["speaker"]) in speakers[r["split"]]


def test_stats_come_from_the_training_split_alone(full_build: Path, arrays) -> None:
    stats = json.loads((full_build / "stats.json").read_text())
    assert stats["signal"]["n_fft"] == 1199 and stats["signal"]["hop_length"] == 304
    assert stats["signal"]["magnitude"] == "db"
    train = (arrays["train"]["clean"], arrays["train"]["noisy"])
    assert (stats["min"], stats["max"]) == pytest.approx(feature_min_max(train, SEED_SPEC), abs=1e-4)
    held_out = (arrays["val"]["noisy"], arrays["test"]["noisy"], arrays["val"]["clean"], arrays["test"]["clean"])
    held_min, held_max = feature_min_max(held_out, SEED_SPEC)
    # the held-out splits alone give a different range, so the recorded one is train's, not theirs
    assert held_max != pytest.approx(stats["max"], abs=1e-3)
    assert stats["stats_computed_on"] == "train"


def test_manifest_matches_the_arrays(full_build: Path, arrays) -> None:
    rows = _manifest(full_build)
    with open(full_build / "manifest.csv", newline="") as fh:
        assert next(csv.reader(fh)) == MANIFEST_COLUMNS
    for s in SPLITS:
        part = [r for r in rows if r["split"] == s]
        assert len(part) == arrays[s]["clean"].shape[0]
        assert [int(r["index"]) for r in part] == list(range(len(part)))
        assert [int(r["speaker"]) for r in part] == arrays[s]["speakers"].tolist()
        durations = np.array([float(r["duration_s"]) for r in part])
        assert np.allclose(durations, arrays[s]["lengths"] / 16000, atol=1e-3)
        i = len(part) // 2
        clean, noisy, n = arrays[s]["clean"][i], arrays[s]["noisy"][i], arrays[s]["lengths"][i]
        measured = 20 * np.log10(np.sqrt(np.mean(clean[:n] ** 2)) / np.sqrt(np.mean((noisy - clean)[:n] ** 2)))
        assert float(part[i]["snr_db"]) == pytest.approx(measured, abs=1e-2)
        assert part[i]["mix_mode"] == "reference"


def test_build_is_reproducible_from_the_seed(shared_data: Path, tmp_path: Path) -> None:
    args = ("--segment", "--max-utterances", "30", "--mix", "snr", "--seed", "7")
    assert _build(shared_data, tmp_path / "a", *args) == 0
    assert _build(shared_data, tmp_path / "b", *args) == 0
    assert _build(shared_data, tmp_path / "c", *args[:-1], "8") == 0
    assert _manifest(tmp_path / "a") == _manifest(tmp_path / "b")
    assert _manifest(tmp_path / "a") != _manifest(tmp_path / "c")
    for s in SPLITS:
        a, b = np.load(tmp_path / "a" / f"{s}.npz"), np.load(tmp_path / "b" / f"{s}.npz")
        for key in ("clean", "noisy", "lengths", "speakers"):
            assert np.array_equal(a[key], b[key]), (s, key)
    sa, sb = (json.loads((tmp_path / d / "stats.json").read_text()) for d in "ab")
    assert sa.pop("build_seconds") > 0 and sb.pop("build_seconds") > 0  # the one thing that may differ
    assert sa == sb
    # controlled-SNR mode: train drawn from the range, val/test cycle through -5/0/5/10
    rows = _manifest(tmp_path / "a")
    train = [float(r["snr_db"]) for r in rows if r["split"] == "train"]
    assert all(-5 <= v <= 10 for v in train) and len(set(train)) > 4
    for s in ("val", "test"):
        snrs = [float(r["snr_db"]) for r in rows if r["split"] == s]
        assert snrs == [(-5.0, 0.0, 5.0, 10.0)[i % 4] for i in range(len(snrs))]


def test_extra_noise_joins_the_training_pool_only(full_build: Path, shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "extra"
    assert _build(shared_data, out, "--segment", "--seed", "0", "--extra-noise", str(shared_data / "extra-noise")) == 0
    base = {s: np.load(full_build / f"noise_{s}.npz") for s in SPLITS}
    more = {s: np.load(out / f"noise_{s}.npz") for s in SPLITS}
    # 124.6 s + 7.1 s + 25.7 s of rain and thunder in 5-s clips; pieces under a second are dropped
    assert more["train"]["noise"].shape[0] == base["train"]["noise"].shape[0] + 25 + 2 + 5
    assert np.array_equal(more["train"]["noise"][: base["train"]["noise"].shape[0]], base["train"]["noise"])
    extra = [str(s) for s in more["train"]["src_files"] if str(s).startswith("extra:")]
    assert len(set(extra)) == 3 and {str(c) for c in more["train"]["categories"]} == {"rain", "thunderstorm"}
    for split in ("val", "test"):  # scores stay comparable: ESC-50 only
        assert np.array_equal(more[split]["noise"], base[split]["noise"])
    # the fixed mixtures are drawn before the extra clips join, so they do not change
    for split in SPLITS:
        assert np.array_equal(np.load(out / f"{split}.npz")["noisy"], np.load(full_build / f"{split}.npz")["noisy"])
    stats = json.loads((out / "stats.json").read_text())
    assert stats["summary"]["train"]["noise"]["extra_files"] == 32 and stats["summary"]["val"]["noise"]["extra_files"] == 0


def test_missing_extra_noise_folder_is_a_clear_error(shared_data: Path, tmp_path: Path, capsys) -> None:
    assert _build(shared_data, tmp_path / "x", "--max-utterances", "14", "--extra-noise", str(tmp_path / "nowhere")) != 0
    assert "extra noise folder" in capsys.readouterr().err
