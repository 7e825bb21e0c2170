"""Export a trained run to one self-describing ONNX file: ``python -m training.export --run RUN_DIR --out FILE.onnx``.

The file has dynamic batch and time axes and carries the whole signal contract in
its metadata (see ``denoise_core.model_file.ModelInfo``). Every export runs a parity
check: onnxruntime must match Keras within 1e-4 on several batch sizes and frame
counts, including a count that is not a legal multiple (padded by the shared code).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import onnx  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

from denoise_core.model_file import INPUT_NAME, ModelInfo, OnnxModel  # noqa: E402
from denoise_core.signal import MaskAndTaps, NetOutput, SignalSpec, output_parts, run_network  # noqa: E402
from training.models.bandnet import FreqMatrix  # noqa: E402,F401  (registers the layers for load_model)
from training.models.default import BoundedComplexMask  # noqa: E402,F401
from training.models.bandnet_onnx import UnsupportedNetwork, bandnet_to_onnx  # noqa: E402
from training.models.subpixel import replace_transposed_convolutions  # noqa: E402

PARITY_TOLERANCE = 1e-4
OPSET = 17
#: how :func:`to_onnx` writes a network: ``graph`` writes a band network straight to a
#: channels-first ONNX graph (any other network goes through tf2onnx as ``subpixel``);
#: ``subpixel`` converts with tf2onnx after rewriting the transposed convolutions;
#: ``transposed`` converts with tf2onnx as the network is
EXPORT_FORMS = ("graph", "subpixel", "transposed")


class ParityError(RuntimeError):
    """onnxruntime and Keras disagree on the exported network."""


def load_run(run: Path, checkpoint: str | None = None) -> tuple[keras.Model, dict[str, Any], dict[str, Any]]:
    """The trained network, the run's config.json and result.json.

    ``checkpoint`` (a weights file in the run, e.g. ``best-quality.weights.h5``) exports a run
    that is still training: the preset's network is rebuilt from config.json and given those
    weights, and the result records the training time and epochs so far (``time.json``)."""
    if not (run / "config.json").exists():
        raise FileNotFoundError(f"{run} is not a run directory (no config.json)")
    config = json.loads((run / "config.json").read_text())
    if checkpoint is None:
        if not (run / "model.keras").exists():
            raise FileNotFoundError(f"{run} is not a finished run (no model.keras): name a --checkpoint to export it now")
        net = keras.models.load_model(str(run / "model.keras"), compile=False)
        result = json.loads((run / "result.json").read_text()) if (run / "result.json").exists() else {}
        return net, config, result
    weights = run / checkpoint
    if not weights.is_file():
        raise FileNotFoundError(f"no checkpoint {weights}")
    net = network_from_config(config)
    net.load_weights(str(weights))
    progress = json.loads((run / "time.json").read_text()) if (run / "time.json").exists() else {}
    result = {"train_seconds": progress.get("seconds"), "epochs_run": progress.get("epoch"), "checkpoint": checkpoint,
              "parameters": int(net.count_params()), "metrics": checkpoint_quality(run, checkpoint)}
    return net, config, result


def network_from_config(config: dict[str, Any]) -> keras.Model:
    """The untrained network a run's ``config.json`` describes (preset, signal, width, model options)."""
    from training.presets import get_preset
    from training.train import build_network

    train = config["train"]
    return build_network(get_preset(config["preset"]), SignalSpec.from_dict(config["signal"]), train.get("width", 1.0),
                         train.get("model_options") or {})


def checkpoint_quality(run: Path, checkpoint: str) -> dict[str, float]:
    """The row of the run's ``quality.csv`` that scored ``checkpoint``, or {}.

    ``quality-<step>.weights.h5`` is the row of that step; an average written by
    ``training.checkpoint_average`` has its own figures beside it; any other file is taken to
    be the best-quality checkpoint, the row with the best score."""
    from training.checkpoint_average import quality_sidecar
    from training.quality import STEP_WEIGHTS, read_log

    sidecar = quality_sidecar(run / checkpoint)
    if sidecar.is_file():
        figures = json.loads(sidecar.read_text())
        return {f"val_{k}": float(v) for k, v in figures.items() if k != "sources"}
    rows = read_log(run)
    kept = STEP_WEIGHTS.fullmatch(checkpoint)
    if kept:
        rows = [r for r in rows if int(r["step"]) == int(kept.group(1))]
    if not rows:
        return {}
    best = max(rows, key=lambda r: float(r["score"]))
    return {f"val_{k}": float(v) for k, v in best.items()}


def to_onnx(net: keras.Model, spec: SignalSpec, form: str = "graph") -> onnx.ModelProto:
    """The network as ONNX in one of :data:`EXPORT_FORMS` and in ``spec.layout``; batch and time
    axes stay dynamic. Only the graph form of a band network is written channels-first
    (:class:`UnsupportedNetwork` for any other)."""
    if form not in EXPORT_FORMS:
        raise ValueError(f"form must be one of {EXPORT_FORMS}, not {form!r}")
    channels_first = spec.layout == "channels_first"
    if form == "graph":
        try:
            return bandnet_to_onnx(net, OPSET, INPUT_NAME, channels_first=channels_first)
        except UnsupportedNetwork:
            if channels_first:
                raise
            form = "subpixel"
    if channels_first:
        raise UnsupportedNetwork(f"the {form} form is written channels-last only")
    if form == "subpixel":
        net = replace_transposed_convolutions(net)
    signature = (tf.TensorSpec((None, spec.n_freq, None, spec.input_channels), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=signature)
    def infer(features: tf.Tensor) -> tf.Tensor:
        return net(features, training=False)

    model, _ = tf2onnx.convert.from_function(infer, input_signature=signature, opset=OPSET)
    return model


def export_model(net: keras.Model, spec: SignalSpec, form: str = "graph") -> tuple[onnx.ModelProto, SignalSpec]:
    """The network as ONNX (:func:`to_onnx`), channels-first where it can be written so (no
    transposes at either end of the graph), else channels-last; and ``spec`` with that layout."""
    first = replace(spec, layout="channels_first")
    try:
        return to_onnx(net, first, form), first
    except UnsupportedNetwork:
        last = replace(spec, layout="channels_last")
        return to_onnx(net, last, form), last


def dataset_build_seconds(config: dict[str, Any]) -> float | None:
    """How long building the run's dataset took: recorded at training time, else read
    from the dataset's ``stats.json`` if it is still there."""
    if config.get("dataset_build_seconds") is not None:
        return float(config["dataset_build_seconds"])
    stats_file = Path(str(config.get("train", {}).get("data", ""))) / "stats.json"
    if stats_file.is_file():
        seconds = json.loads(stats_file.read_text()).get("build_seconds")
        return float(seconds) if seconds is not None else None
    return None


def _stage(weights: Path) -> dict[str, Any] | None:
    """The run that wrote ``weights``, with its recorded training time (None without ``time.json``)."""
    if not (weights.parent / "time.json").is_file():
        return None
    progress = json.loads((weights.parent / "time.json").read_text())
    return {"run": weights.parent.name, "weights": weights.name, "seconds": progress.get("seconds"), "epochs": progress.get("epoch")}


def _run_config(run: Path) -> dict[str, Any]:
    return json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}


def earlier_stages(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs this run's weights descend from (``--init-weights``, followed through each run's
    ``config.json``), earliest first, each with its recorded training time; the chain stops at
    a run that started from scratch or whose ``time.json`` is not beside its weights."""
    stages: list[dict[str, Any]] = []
    seen: set[Path] = set()
    init = config.get("train", {}).get("init_weights")
    while init:
        weights = Path(str(init))
        stage = _stage(weights)
        if weights.parent.resolve() in seen or stage is None:
            break
        seen.add(weights.parent.resolve())
        stages.insert(0, stage)
        init = _run_config(weights.parent).get("train", {}).get("init_weights")
    return stages


def teacher_paths(config: dict[str, Any]) -> list[Path]:
    """The weights files of the teacher a run followed (``--teacher``: one, or several whose mean
    it followed; older runs record one path as a string)."""
    teacher = config.get("train", {}).get("teacher")
    return [Path(str(t)) for t in ([teacher] if isinstance(teacher, str) else teacher or [])]


def teacher_stages(config: dict[str, Any], counted: set[str] = frozenset()) -> list[dict[str, Any]]:
    """The runs behind the teacher this run followed (``--teacher``, training.distill): for each
    teacher network, the runs its weights descend from and its own run, earliest first, each run
    once, less the runs named in ``counted`` (the model's own earlier stages); a teacher network
    whose ``time.json`` is not beside its weights adds nothing."""
    stages: list[dict[str, Any]] = []
    for weights in teacher_paths(config):
        stage = _stage(weights)
        if stage is None:
            continue
        for st in [*earlier_stages(_run_config(weights.parent)), stage]:
            if st["run"] not in counted and all(st["run"] != seen["run"] for seen in stages):
                stages.append(st)
    return stages


def model_info(config: dict[str, Any], result: dict[str, Any], name: str | None, version: str | None) -> ModelInfo:
    preset = config["preset"]
    commit = config.get("training_commit", "unknown")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d")
    return ModelInfo(
        name=name or f"rainclean-{preset}",
        version=version or f"{stamp}-{commit[:7]}",
        preset=preset,
        signal=SignalSpec.from_dict(config["signal"]),
        training_commit=commit,
        data_summary=config.get("data_summary", {}),
        training={
            "command": config.get("command"),
            "seconds": result.get("train_seconds"),
            "dataset_build_seconds": dataset_build_seconds(config),
            "epochs": result.get("epochs_run"),
            "parameters": result.get("parameters"),
            "metrics": result.get("metrics", {}),
            "hyperparameters": config.get("train", {}),
            **({"checkpoint": result["checkpoint"]} if result.get("checkpoint") else {}),
            **({"earlier_stages": stages} if (stages := earlier_stages(config)) else {}),
            **({"teacher_stages": teachers} if (teachers := teacher_stages(config, {st["run"] for st in stages})) else {}),
        },
    )


def attach_metadata(model: onnx.ModelProto, info: ModelInfo) -> None:
    del model.metadata_props[:]
    for key, value in info.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "rainclean"
    model.doc_string = f"{info.name} {info.version}: speech denoiser for rain and thunderstorm noise"


def output_difference(a: NetOutput, b: NetOutput, spec: SignalSpec) -> float:
    """Largest |a - b| of two outputs of one network, part by part where either comes as
    :class:`MaskAndTaps`."""
    if isinstance(a, MaskAndTaps) or isinstance(b, MaskAndTaps):
        pa, pb = output_parts(a, spec), output_parts(b, spec)
        return max(float(np.max(np.abs(pa.mask - pb.mask))), float(np.max(np.abs(pa.taps - pb.taps))))
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def check_parity(net: keras.Model, onnx_path: Path, seed: int = 0) -> float:
    """Largest |onnxruntime - Keras| over several batch sizes and frame counts."""
    runtime = OnnxModel(onnx_path)
    spec = runtime.spec
    rng = np.random.default_rng(seed)
    m = spec.frame_multiple
    worst = 0.0
    for batch, frames in ((1, 8 * m), (3, 13 * m), (2, 40 * m)):
        x = rng.uniform(0.0, 1.0, (batch, spec.n_freq, frames, spec.input_channels)).astype(np.float32)
        worst = max(worst, output_difference(runtime.predict(x), net(x, training=False).numpy(), spec))
    # an illegal frame count, padded and cropped by the shared signal code
    odd = 11 * m + 3 if m > 1 else 37
    feats = rng.uniform(0.0, 1.0, (spec.n_freq, odd, spec.input_channels)).astype(np.float32)
    keras_out = run_network(feats, spec, lambda b: net(b, training=False).numpy())
    ort_out = run_network(feats, spec, runtime.predict)
    worst = max(worst, output_difference(keras_out, ort_out, spec))
    if worst >= PARITY_TOLERANCE:
        raise ParityError(f"onnxruntime differs from Keras by {worst:.3g} (limit {PARITY_TOLERANCE})")
    return worst


def export_run(run: Path, out: Path, name: str | None = None, version: str | None = None,
               checkpoint: str | None = None, post_filter: float = 0.0) -> ModelInfo:
    """Convert, attach metadata, save and check parity; returns the written metadata.

    ``post_filter`` goes into the signal contract (``SignalSpec.post_filter``): whoever runs the
    file applies the mask post-filter with that strength."""
    started = time.monotonic()
    net, config, result = load_run(run, checkpoint)
    info = model_info(config, result, name, version)
    if post_filter:
        info = replace(info, signal=replace(info.signal, post_filter=float(post_filter)))
    model, signal = export_model(net, info.signal)
    info = replace(info, signal=signal)
    attach_metadata(model, info)
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    worst = check_parity(net, out)
    info.training["export_seconds"] = round(time.monotonic() - started, 1)
    attach_metadata(model, info)
    onnx.save(model, str(out))
    size_mb = out.stat().st_size / 2**20
    print(f"exported {info.name} {info.version} to {out} ({size_mb:.2f} MB); parity max |diff| {worst:.2e}", flush=True)
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, type=Path, help="run directory from `python -m training.train`")
    p.add_argument("--out", required=True, type=Path, help="ONNX file to write")
    p.add_argument("--name", default=None, help="model name (default rainclean-<preset>)")
    p.add_argument("--version", default=None, help="model version (default <date>-<commit>)")
    p.add_argument("--checkpoint", default=None, metavar="WEIGHTS",
                   help="export this weights file of the run (e.g. best-quality.weights.h5) instead of its finished model")
    p.add_argument("--post-filter", type=float, default=0.0, metavar="BETA",
                   help="strength of the mask post-filter written into the signal contract (default 0: none)")
    args = p.parse_args(argv)
    if args.post_filter < 0:
        p.error("--post-filter must be >= 0")
    try:
        export_run(args.run, args.out, args.name, args.version, args.checkpoint, args.post_filter)
    except (FileNotFoundError, ParityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
