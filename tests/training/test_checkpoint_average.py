"""`python -m training.checkpoint_average`: the mean of checkpoints of one network, scored on
the validation split, and exported with its own figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.training

from denoise_core.model_file import OnnxModel  # noqa: E402
from denoise_core.signal import SignalSpec  # noqa: E402
from training.checkpoint_average import NetworkMismatch, average_weights, build_run_network, main  # noqa: E402
from training.evaluation.ship_rule import TARGETS, quality_score  # noqa: E402
from training.export import main as export_main  # noqa: E402

TINY = {"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2]}


def fake_run(run: Path, options: dict, seeds: list[int]) -> list[Path]:
    """A run directory with one weights file per seed (the network's weights, each randomly moved)."""
    run.mkdir(parents=True)
    spec = SignalSpec(output="complex_mask", lookahead_frames=2)
    (run / "config.json").write_text(json.dumps({"preset": "band", "signal": spec.to_dict(),
                                                 "train": {"model_options": options, "width": 1.0}}))
    net, _ = build_run_network(run)
    base = net.get_weights()
    files = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        net.set_weights([w + 0.1 * rng.standard_normal(w.shape).astype(np.float32) for w in base])
        files.append(run / f"quality-{1000 * (seed + 1)}.weights.h5")
        net.save_weights(str(files[-1]))
    return files


def weights_of(path: Path, run: Path) -> list[np.ndarray]:
    net, _ = build_run_network(run)
    net.load_weights(str(path))
    return net.get_weights()


def test_the_average_is_the_mean_of_every_weight(tmp_path: Path) -> None:
    run = tmp_path / "a"
    files = fake_run(run, TINY, [0, 1, 2])
    net, config = build_run_network(run)
    averaged = average_weights(net, config, files).get_weights()
    each = [weights_of(f, run) for f in files]
    for i, w in enumerate(averaged):
        np.testing.assert_allclose(w, np.mean([e[i] for e in each], axis=0), rtol=0, atol=1e-6)
    assert not np.allclose(averaged[0], each[0][0])


def test_checkpoints_of_another_network_are_refused(tmp_path: Path) -> None:
    run, other = tmp_path / "a", tmp_path / "b"
    files = fake_run(run, TINY, [0])
    files += fake_run(other, {**TINY, "bottleneck": 12}, [1])
    net, config = build_run_network(run)
    with pytest.raises(NetworkMismatch):
        average_weights(net, config, files)


def test_the_average_is_scored_and_exported_with_its_own_figures(tmp_path: Path, tiny_dataset: Path) -> None:
    run, other = tmp_path / "a", tmp_path / "fine-tuned"
    files = fake_run(run, TINY, [0]) + fake_run(other, TINY, [1])  # runs of one network
    assert main([*map(str, files), "--run", str(run), "--name", "soup", "--data", str(tiny_dataset)]) == 0
    figures = json.loads((run / "soup.quality.json").read_text())
    assert figures["sources"] == [str(f) for f in files]
    assert all(np.isfinite(figures[k]) for k in TARGETS)
    assert figures["score"] == pytest.approx(quality_score(figures))

    out = tmp_path / "soup.onnx"
    assert export_main(["--run", str(run), "--out", str(out), "--checkpoint", "soup.weights.h5"]) == 0
    metrics = OnnxModel(out).info.training["metrics"]
    assert metrics["val_score"] == pytest.approx(figures["score"]) and metrics["val_pesq"] == pytest.approx(figures["pesq"])


def test_a_name_with_a_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main([str(tmp_path / "x.weights.h5"), "--run", str(tmp_path), "--name", "../elsewhere", "--data", str(tmp_path)])
