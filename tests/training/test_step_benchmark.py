"""The training step's benchmark and profile commands, run on a tiny real dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.pipeline_helpers import TINY_BAND, TINY_DEFAULT, run

pytestmark = pytest.mark.training


def test_step_benchmark_times_each_design(tiny_dataset: Path) -> None:
    wider = json.dumps({**json.loads(TINY_DEFAULT), "bottleneck": 32})
    out = run("-m", "training.step_benchmark", "--data", str(tiny_dataset), "--model-options", TINY_DEFAULT, "--model-options", wider,
              "--steps", "1", "--batch-size", "2", "--crop-seconds", "1", "--precision", "float32", "--precision", "mixed_bfloat16").stdout
    rows = [line.split(maxsplit=1)[1].rsplit(maxsplit=4) for line in out.splitlines()[1:] if line.startswith("default ")]
    assert [(json.loads(r[0]), r[1]) for r in rows] == [(json.loads(o), p) for o in (TINY_DEFAULT, wider) for p in ("float32", "mixed_bfloat16")], out
    params = [int(r[2]) for r in rows]
    assert 0 < params[0] == params[1] < params[2] == params[3]
    assert all(float(r[3]) > 0 and float(r[4]) > 0 for r in rows)


def test_step_benchmark_times_each_preset(tiny_dataset: Path) -> None:
    out = run("-m", "training.step_benchmark", "--data", str(tiny_dataset), "--preset", "band", "--preset", "band-mask",
              "--model-options", TINY_BAND, "--steps", "1", "--batch-size", "2", "--crop-seconds", "1", "--wave-loss", "si_sdr",
              "--threads", "1", "--perceptual-weight", "20").stdout
    assert out.startswith("wave loss: si_sdr + 20 x perceptual; TensorFlow intra-op threads: 1\n"), out
    rows = [line.split() for line in out.splitlines()[1:] if line.startswith("band")]
    assert [r[0] for r in rows] == ["band", "band-mask"], out
    assert all(float(r[-1]) > 0 for r in rows)
    assert int(rows[0][-3]) > int(rows[1][-3])  # the complex mask's output layer has two channels


def test_step_benchmark_compiles_each_presets_perceptual_term_unless_told_otherwise(tiny_dataset: Path) -> None:
    from training.datasets import Dataset
    from training.graph import negative_si_sdr_loss
    from training.step_benchmark import step_model

    data, options = Dataset.open(tiny_dataset), json.loads(TINY_BAND)
    assert step_model(data, "band-offline-df", options, 2, 1.0)[0].loss["wave"] is negative_si_sdr_loss
    assert step_model(data, "band-offline-df-pesq", options, 2, 1.0)[0].loss["wave"] is not negative_si_sdr_loss
    assert step_model(data, "band-offline-df-pesq", options, 2, 1.0, perceptual_weight=0.0)[0].loss["wave"] is negative_si_sdr_loss


def test_step_profile_splits_a_step_by_op_type_and_layer(tiny_dataset: Path) -> None:
    out = run("-m", "training.step_profile", "--data", str(tiny_dataset), "--preset", "band-offline", "--model-options", TINY_BAND,
              "--steps", "2", "--batch-size", "2", "--crop-seconds", "1", "--top", "1000").stdout
    header, rest = out.split("\n", 1)
    assert header.startswith("band-offline: ") and float(header.split()[1]) > 0, out
    types, layers = rest.split("  layer\n")
    assert "MatMul" in types and "StridedSliceGrad" not in types, out  # the training graph slices cheaply
    names = [line.split(maxsplit=2)[2] for line in layers.splitlines()]
    assert "bwd bandnet/crop_bands" in names and "fwd bandnet/enc0_conv" in names, out
    assert any(n.startswith("fwd mask_to_signal/") for n in names), out
