"""Streaming ONNX models for the stream tests.

- :func:`make_delay_stream_model`: a hand-built streaming model (no TensorFlow) with the export's
  interface and metadata: it delays the features by ``lookahead`` frames through a state tensor
  and returns ``sigmoid(k * x + b)`` of the delayed frame (or ones: a pass-through).
- :func:`export_band_stream`: a tiny band network with random weights, saved as a run and
  exported with ``training.export_stream`` (needs TensorFlow), plus a whole-file ``predict``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from denoise_core.model_file import ModelInfo
from denoise_core.signal import SignalSpec
from tests.onnx_fixtures import save_model

INT_MAX = 2**62


def make_delay_stream_model(path: Path, lookahead: int = 2, kind: str = "sigmoid", name: str = "delay-stream",
                            spec: SignalSpec | None = None) -> Path:
    spec = spec or SignalSpec(output="mask", lookahead_frames=lookahead)
    L, F = lookahead, spec.n_freq
    feats = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", F, "block", 1])
    valid = helper.make_tensor_value_info("valid", TensorProto.FLOAT, ["batch", "block"])
    st = helper.make_tensor_value_info("state_feat", TensorProto.FLOAT, ["batch", F, L, 1])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", F, "block", 1])
    nxt = helper.make_tensor_value_info("next_state_feat", TensorProto.FLOAT, ["batch", F, L, 1])
    inits = [numpy_helper.from_array(np.array(v, dtype=np.int64), n) for n, v in
             (("zero", [0]), ("negL", [-L]), ("big", [INT_MAX]), ("axis", [2]))]
    if lookahead < 1:
        raise ValueError("the delay model needs lookahead >= 1")
    consts = {"k": 4.0, "b": -2.0} if kind == "sigmoid" else {"f0": 0.0, "f1": 1.0}
    inits += [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in consts.items()]
    nodes = [helper.make_node("Concat", ["state_feat", "features"], ["window"], axis=2),
             helper.make_node("Slice", ["window", "zero", "negL", "axis"], ["delayed"]),
             helper.make_node("Slice", ["window", "negL", "big", "axis"], ["next_state_feat"]),
             helper.make_node("ReduceSum", ["valid"], ["unused"], keepdims=0)]  # keep `valid` an input in use
    if kind == "sigmoid":
        nodes += [helper.make_node("Mul", ["delayed", "k"], ["scaled"]), helper.make_node("Add", ["scaled", "b"], ["shifted"]),
                  helper.make_node("Sigmoid", ["shifted"], ["mask"])]
    else:
        nodes += [helper.make_node("Mul", ["delayed", "f0"], ["zeros"]), helper.make_node("Add", ["zeros", "f1"], ["mask"])]
    unused = helper.make_tensor_value_info("unused", TensorProto.FLOAT, [])
    graph = helper.make_graph(nodes, name, [feats, valid, st], [mask, nxt, unused], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    info = ModelInfo(name=name, version="0.0.1-test", preset="test", signal=spec)
    layout = {"delay": L, "n_freq": F, "input_channels": 1, "output_channels": 1,
              "states": [{"name": "feat", "input": "state_feat", "output": "next_state_feat", "shape": ["batch", F, L, 1],
                          "role": "the last L feature frames"}]}
    props = {"streaming": "true", "stream_lookahead_frames": str(L), "stream_block_axis": "2",
             "stream_states": json.dumps(layout["states"]), "stream_layout": json.dumps(layout),
             "algorithmic_latency_ms": f"{(spec.n_fft + L * spec.hop_length) / spec.sample_rate * 1000:g}",
             "stream_protocol": "test"}
    return save_model(model, info, path, props)


def delay_model_predict(kind: str = "sigmoid"):
    """The offline model the delay stream model streams: a per-frame mask."""
    def predict(batch: np.ndarray) -> np.ndarray:
        if kind == "sigmoid":
            return (1.0 / (1.0 + np.exp(-(4.0 * batch - 2.0)))).astype(np.float32)
        return np.ones_like(batch)
    return predict


TINY = {"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2, 4, 1]}


def export_band_stream(tmp: Path, lookahead: int = 2, complex_mask: bool = True, seed: int = 3,
                       options: dict | None = None, df_bins: int = 0) -> Path:
    """A band network with random weights saved as a run and exported as a streaming ONNX; returns
    the file. ``df_bins``: a deep filter (five taps over frames t - 2 .. t + 2) on the lowest bins."""
    from training.export_stream import main
    from training.models.bandnet import BandConfig, build_bandnet

    options = {**(options or TINY), "lookahead": lookahead}
    config = BandConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})
    net = build_bandnet(257, config, complex_mask=complex_mask, df_bins=df_bins)
    rng = np.random.default_rng(seed)
    net.set_weights([w + 0.2 * rng.standard_normal(w.shape).astype(np.float32) for w in net.get_weights()])
    run = tmp / "run"
    run.mkdir(parents=True, exist_ok=True)
    net.save(str(run / "model.keras"))
    spec = SignalSpec(output="complex_mask" if complex_mask else "mask", lookahead_frames=max(lookahead, 2 if df_bins else 0),
                      df_bins=df_bins)
    (run / "config.json").write_text(json.dumps({"signal": spec.to_dict(), "train": {"model_options": options},
                                                 "preset": "band" if complex_mask else "band-mask"}))
    out = tmp / "stream.onnx"
    assert main(["--run", str(run), "--out", str(out), "--version", "0.0.1-test"]) == 0
    return out


def whole_file_predict(model):
    """``predict`` for ``enhance_wave``: the streaming model driven over the whole input in one call."""
    def predict(batch: np.ndarray) -> np.ndarray:
        b, _, frames, _ = batch.shape
        state = model.initial_state(b)
        first, state = model.step(batch, np.ones((b, frames), np.float32), state)
        L = model.network_delay
        if not L:
            return first
        zeros = np.zeros((b, batch.shape[1], L, batch.shape[3]), np.float32)
        last, _ = model.step(zeros, np.zeros((b, L), np.float32), state)
        return np.concatenate([first, last], axis=2)[:, :, L:]
    return predict
