"""Tiny ONNX models built directly with the ``onnx`` package, for service and evaluation tests.

They carry the same metadata a real export writes (``ModelInfo.to_props``), so the
code under test reads them exactly as it reads the shipped model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from denoise_core.model_file import INPUT_NAME, OUTPUT_NAME, ModelInfo
from denoise_core.signal import SignalSpec


def save_model(model: onnx.ModelProto, info: ModelInfo, path: Path, extra: dict[str, str] | None = None) -> Path:
    """Attach ``info`` (and ``extra`` metadata) as a real export does, check the model and save it to ``path``."""
    for key, value in {**info.to_props(), **(extra or {})}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def make_constant_mask_model(path: Path, spec: SignalSpec | None = None, gain: float = 1.0, name: str = "passthrough") -> Path:
    """A mask model whose mask is ``gain`` everywhere (gain 1.0 = pass-through).

    ``spec.output`` must be "mask"; for "magnitude" the network is the identity
    (which is also a pass-through, through the magnitude representation).
    """
    spec = spec or SignalSpec(output="mask", frame_multiple=4)
    x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", spec.n_freq, "frames", 1])
    y = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", spec.n_freq, "frames", 1])
    if spec.output == "mask":
        zero = numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")
        g = numpy_helper.from_array(np.array(gain, dtype=np.float32), "gain")
        nodes = [
            helper.make_node("Mul", [INPUT_NAME, "zero"], ["zeros"]),
            helper.make_node("Add", ["zeros", "gain"], [OUTPUT_NAME]),
        ]
        inits = [zero, g]
    else:
        nodes = [helper.make_node("Identity", [INPUT_NAME], [OUTPUT_NAME])]
        inits = []
    graph = helper.make_graph(nodes, name, [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return save_model(model, ModelInfo(name=name, version="0.0.0-test", preset="test", signal=spec,
                                       data_summary={"speakers": {"train": 1}}, evaluation={}), path)


def make_mixing_model(path: Path, spec: SignalSpec, seed: int = 0, split_taps: bool = False) -> Path:
    """A network that mixes channels and depends on the bin: ``tanh(x @ W + b[bin])`` with fixed
    random ``W`` and ``b``, written in ``spec.layout`` (a channels-first file transposes in and
    out around the same arithmetic). ``split_taps`` (deep-filter contracts): two outputs, the
    mask (channels 0-1) and the taps (channels 2.. of the lowest ``df_bins`` bins), as the band
    network's export writes them."""
    rng = np.random.default_rng(seed)
    n_in, n_out = spec.input_channels, spec.output_channels
    first = spec.layout == "channels_first"

    def dims(channels: int, bins: int) -> list[Any]:
        return ["batch", channels, "frames", bins] if first else ["batch", bins, "frames", channels]

    inits = [numpy_helper.from_array(rng.normal(size=(n_in, n_out)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=(spec.n_freq, 1, 1)).astype(np.float32), "b")]
    nodes = []
    source = INPUT_NAME
    if first:
        nodes.append(helper.make_node("Transpose", [INPUT_NAME], ["last"], perm=[0, 3, 2, 1]))
        source = "last"
    nodes += [helper.make_node("MatMul", [source, "w"], ["mixed"]), helper.make_node("Add", ["mixed", "b"], ["shifted"]),
              helper.make_node("Tanh", ["shifted"], ["out_last"])]
    if split_taps:
        parts = {"mask": ([0, 0], [spec.n_freq, 2], dims(2, spec.n_freq)),
                 "taps": ([0, 2], [spec.df_bins, n_out], dims(n_out - 2, spec.df_bins))}
    else:
        parts = {OUTPUT_NAME: ([0, 0], [spec.n_freq, n_out], dims(n_out, spec.n_freq))}
    for name, (starts, ends, _) in parts.items():
        inits += [numpy_helper.from_array(np.array(starts, np.int64), f"{name}_starts"),
                  numpy_helper.from_array(np.array(ends, np.int64), f"{name}_ends"),
                  numpy_helper.from_array(np.array([1, 3], np.int64), f"{name}_axes")]
        sliced = f"{name}_last" if first else name
        nodes.append(helper.make_node("Slice", ["out_last", f"{name}_starts", f"{name}_ends", f"{name}_axes"], [sliced]))
        if first:
            nodes.append(helper.make_node("Transpose", [sliced], [name], perm=[0, 3, 2, 1]))
    graph = helper.make_graph(nodes, "mixing", [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, dims(n_in, spec.n_freq))],
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, (_, _, shape) in parts.items()],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return save_model(model, ModelInfo(name="mixing", version="0.0.0-test", preset="test", signal=spec), path)
