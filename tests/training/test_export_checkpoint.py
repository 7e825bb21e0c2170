"""Exporting a run that is still training: `--checkpoint` rebuilds the preset's network from
config.json, loads that weights file and records the checkpoint and the training so far."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.training

from denoise_core.model_file import OnnxModel  # noqa: E402
from denoise_core.signal import SignalSpec  # noqa: E402
from denoise_core.streaming import StreamingModel  # noqa: E402
from training.export import main as export_main  # noqa: E402
from training.export_stream import main as export_stream_main  # noqa: E402
from training.presets import get_preset  # noqa: E402
from training.train import build_network  # noqa: E402

TINY = {"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2, 4, 1]}


@pytest.fixture(scope="module")
def unfinished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A band run directory as a training in progress leaves it: no model.keras, a quality checkpoint."""
    run = tmp_path_factory.mktemp("unfinished")
    spec = SignalSpec(output="complex_mask", lookahead_frames=2)
    net = build_network(get_preset("band"), spec, 1.0, TINY)
    rng = np.random.default_rng(0)
    net.set_weights([w + 0.2 * rng.standard_normal(w.shape).astype(np.float32) for w in net.get_weights()])
    net.save_weights(str(run / "best-quality.weights.h5"))
    net.save_weights(str(run / "quality-15000.weights.h5"))
    (run / "config.json").write_text(json.dumps({"preset": "band", "signal": spec.to_dict(),
                                                 "train": {"model_options": TINY, "width": 1.0}}))
    (run / "time.json").write_text(json.dumps({"seconds": 3600.0, "epoch": 30}))
    (run / "quality.csv").write_text("epoch,step,train_hours,si_sdr,pesq,stoi,dnsmos_ovrl,score,seconds\n"
                                     "10,5000,0.3,10.0,1.6,0.82,2.4,0.80,60\n20,10000,0.7,11.0,1.7,0.84,2.5,0.85,60\n"
                                     "30,15000,1.0,10.5,1.7,0.83,2.5,0.83,60\n")
    return run, net


def test_a_checkpoint_exports_with_its_weights_and_progress(unfinished_run, tmp_path: Path) -> None:
    run, net = unfinished_run
    out = tmp_path / "model.onnx"
    assert export_main(["--run", str(run), "--out", str(out), "--checkpoint", "best-quality.weights.h5"]) == 0
    model = OnnxModel(out)
    x = np.random.default_rng(1).uniform(0, 1, (1, 257, 37, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), net(x, training=False).numpy(), rtol=0, atol=1e-4)
    training = model.info.training
    assert training["checkpoint"] == "best-quality.weights.h5"
    assert training["seconds"] == 3600.0 and training["epochs"] == 30
    assert training["metrics"]["val_epoch"] == 20 and training["metrics"]["val_score"] == pytest.approx(0.85)


def test_the_post_filter_strength_is_written_into_the_contract(unfinished_run, tmp_path: Path, capsys) -> None:
    run, _ = unfinished_run
    out = tmp_path / "pf.onnx"
    assert export_main(["--run", str(run), "--out", str(out), "--checkpoint", "best-quality.weights.h5", "--post-filter", "0.05"]) == 0
    assert OnnxModel(out).spec.post_filter == 0.05
    with pytest.raises(SystemExit):
        export_main(["--run", str(run), "--out", str(out), "--post-filter", "-1"])
    assert "--post-filter must be >= 0" in capsys.readouterr().err


def test_a_kept_step_checkpoint_records_its_own_quality_row(unfinished_run, tmp_path: Path) -> None:
    run, _ = unfinished_run
    out = tmp_path / "step.onnx"
    assert export_main(["--run", str(run), "--out", str(out), "--checkpoint", "quality-15000.weights.h5"]) == 0
    training = OnnxModel(out).info.training
    assert training["checkpoint"] == "quality-15000.weights.h5"
    assert training["metrics"]["val_step"] == 15000 and training["metrics"]["val_score"] == pytest.approx(0.83)


def test_a_checkpoint_exports_in_streaming_form(unfinished_run, tmp_path: Path) -> None:
    run, _ = unfinished_run
    out = tmp_path / "stream.onnx"
    assert export_stream_main(["--run", str(run), "--out", str(out), "--checkpoint", "best-quality.weights.h5"]) == 0
    model = StreamingModel(out)
    assert model.lookahead == 2 and model.info.training["checkpoint"] == "best-quality.weights.h5"


def test_a_missing_checkpoint_or_unfinished_run_is_an_error(unfinished_run, tmp_path: Path, capsys) -> None:
    run, _ = unfinished_run
    assert export_main(["--run", str(run), "--out", str(tmp_path / "a.onnx"), "--checkpoint", "nope.weights.h5"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert export_main(["--run", str(run), "--out", str(tmp_path / "b.onnx")]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def _shipped_run() -> tuple[Path, str]:
    """The kept state of SHIP_RUN and SHIPPED_CHECKPOINT, as the Makefile names them."""
    import re

    makefile = Path("Makefile").read_text()
    checkpoint = re.search(r"^SHIPPED_CHECKPOINT \?= (\S+)$", makefile, re.M).group(1)
    run = re.search(r"^SHIP_RUN \?= \$\(RUNS\)/(\S+)$", makefile, re.M).group(1)
    preset = re.search(r"^SHIP_PRESET \?= (\S+)$", makefile, re.M).group(1)
    kept = Path("models/checkpoints") / run
    assert json.loads((kept / "config.json").read_text())["preset"] == preset, "SHIP_PRESET is not the preset SHIP_RUN trained"
    return kept, checkpoint


def test_the_kept_shipped_checkpoint_is_the_shipped_model(tiny_dataset: Path) -> None:
    """`make export-band` exports SHIPPED_CHECKPOINT of SHIP_RUN from the kept run state: it must be the shipped
    network, exactly for a float file; for an int8 file, far closer on real network input than the stage before it."""
    from denoise_core.signal import enhance_audio, output_parts, snr_db
    from training.datasets import Dataset
    from training.export import load_run, output_difference

    kept, checkpoint = _shipped_run()
    net, config, _ = load_run(kept, checkpoint)
    model = OnnxModel(Path("models/denoiser.onnx"))
    if not (model.info.training or {}).get("quantization"):
        x = np.random.default_rng(2).uniform(0, 1, (1, 257, 50, 3)).astype(np.float32)
        assert output_difference(model.predict(x), net(x, training=False).numpy(), model.spec) < 1e-4
        return
    split = Dataset.open(tiny_dataset).split("val")
    seen: list[np.ndarray] = []

    def recording_predict(batch: np.ndarray) -> np.ndarray:
        seen.append(batch)
        return model.predict(batch)

    enhance_audio(split.noisy[0, : int(split.lengths[0])][:, None].astype(np.float32), model.spec.sample_rate, model.spec, recording_predict)
    x = seen[0]  # what denoising a real mixture feeds the network: the range the int8 file was calibrated on
    shipped = output_parts(model.predict(x), model.spec)
    previous_stage = Path(config["train"]["init_weights"])
    earlier, _, _ = load_run(Path("models/checkpoints") / previous_stage.parent.name, previous_stage.name)

    def closeness(other: Any) -> float:
        reference = output_parts(other(x, training=False).numpy(), model.spec)
        return min(snr_db(reference.mask, shipped.mask - reference.mask), snr_db(reference.taps, shipped.taps - reference.taps))

    own = closeness(net)
    assert own > 26.0, f"the int8 file is {own:.1f} dB from its checkpoint"
    assert closeness(earlier) < own - 6.0, "the int8 file is no closer to its checkpoint than to the stage before"


def test_a_warm_started_run_records_every_earlier_stage(tmp_path: Path) -> None:
    from training.export import earlier_stages

    first, second = tmp_path / "stage-one", tmp_path / "stage-two"
    for run, seconds, epoch, init in ((first, 35643.2, 140, None), (second, 3330.0, 12, first / "best-quality.weights.h5")):
        run.mkdir()
        (run / "time.json").write_text(json.dumps({"seconds": seconds, "epoch": epoch}))
        (run / "config.json").write_text(json.dumps({"train": {"init_weights": str(init) if init else None}}))
    config = {"train": {"init_weights": str(second / "best-quality.weights.h5")}}
    assert earlier_stages(config) == [
        {"run": "stage-one", "weights": "best-quality.weights.h5", "seconds": 35643.2, "epochs": 140},
        {"run": "stage-two", "weights": "best-quality.weights.h5", "seconds": 3330.0, "epochs": 12}]
    (first / "config.json").write_text(json.dumps({"train": {"init_weights": str(second / "w.h5")}}))  # a cycle ends
    assert [st["run"] for st in earlier_stages(config)] == ["stage-one", "stage-two"]
    assert earlier_stages({"train": {"init_weights": str(tmp_path / "elsewhere" / "w.h5")}}) == []
    assert earlier_stages({"train": {}}) == []


def test_a_distilled_run_records_its_teachers_stages_once(tmp_path: Path) -> None:
    from training.export import earlier_stages, teacher_stages

    base, teacher, student_source = tmp_path / "base", tmp_path / "teacher", tmp_path / "student-source"
    for run, seconds, epoch, init in ((base, 35643.2, 140, None), (teacher, 2880.0, 6, base / "best-quality.weights.h5"),
                                      (student_source, 3006.0, 16, base / "best-quality.weights.h5")):
        run.mkdir()
        (run / "time.json").write_text(json.dumps({"seconds": seconds, "epoch": epoch}))
        (run / "config.json").write_text(json.dumps({"train": {"init_weights": str(init) if init else None}}))
    config = {"train": {"init_weights": str(student_source / "best-quality.weights.h5"),
                        "teacher": str(teacher / "best-quality.weights.h5")}}
    own = earlier_stages(config)
    assert [st["run"] for st in own] == ["base", "student-source"]
    # the base run is the student's stage already: the teacher adds its own run alone
    assert teacher_stages(config, {st["run"] for st in own}) == [
        {"run": "teacher", "weights": "best-quality.weights.h5", "seconds": 2880.0, "epochs": 6}]
    assert [st["run"] for st in teacher_stages(config)] == ["base", "teacher"]
    assert teacher_stages({"train": {"teacher": str(tmp_path / "elsewhere" / "w.h5")}}) == []
    assert teacher_stages({"train": {}}) == []
    # several teacher networks (their mean): each one's chain, every run once
    second = tmp_path / "second"
    second.mkdir()
    (second / "time.json").write_text(json.dumps({"seconds": 50712.1, "epoch": 140}))
    (second / "config.json").write_text(json.dumps({"train": {"init_weights": None}}))
    both = {"train": {**config["train"], "teacher": [str(teacher / "best-quality.weights.h5"), str(second / "best-quality.weights.h5"),
                                                     str(base / "best-quality.weights.h5")]}}
    assert [st["run"] for st in teacher_stages(both)] == ["base", "teacher", "second"]
    assert [st["run"] for st in teacher_stages(both, {st["run"] for st in own})] == ["teacher", "second"]
