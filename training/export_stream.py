"""Export a band run's streaming form to ONNX: ``python -m training.export_stream --run RUN_DIR --out FILE.onnx``.

The file holds :func:`training.models.bandnet_stream.build_bandnet_stream` of the run's
offline network (same weights): inputs ``features`` ``(batch, n_freq, block, channels)``,
``valid`` ``(batch, block)`` and one ``state_<name>`` per state tensor; outputs ``mask`` and
``next_state_<name>``. The block axis is dynamic (any number of frames per call, 1
included). Its metadata is the offline export's (``training.export.model_info``) plus:

- ``streaming``: ``"true"``;
- ``stream_lookahead_frames``: L, the frames the output lags the input;
- ``stream_block_axis``: ``"2"``, the block axis of ``features`` and ``mask`` (1 of ``valid``);
- ``stream_states``: JSON list of ``{name, input, output, shape, role}`` (shape ``["batch", ...]``);
- ``stream_layout``: JSON of :class:`~training.models.bandnet_stream.StreamLayout`;
- ``algorithmic_latency_ms``: ``(n_fft + L' * hop) / sample_rate * 1000``, with ``L'`` the larger of L
  and a deep filter's reach (``df_lookahead``);
- ``stream_protocol``: how to call it (zero states first; ``L`` flush frames with ``valid = 0`` at the end).

Every export checks onnxruntime against the Keras streaming model on a random-block-size
stream (max |diff| < 1e-4).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

from denoise_core.model_file import ModelInfo  # noqa: E402
from denoise_core.signal import SignalSpec  # noqa: E402
from denoise_core.streaming import output_lookahead  # noqa: E402
from training.export import OPSET, PARITY_TOLERANCE, ParityError, attach_metadata, load_run, model_info  # noqa: E402
from training.models.bandnet import BandConfig  # noqa: E402
from training.models.bandnet_stream import (  # noqa: E402
    FEATURES, VALID, Step, StreamingBandNet, StreamLayout, build_bandnet_stream, stream_features,
)
from training.models.subpixel import replace_transposed_convolutions  # noqa: E402

PROTOCOL = ("Start with every state_* input at zeros of its shape. Each call: features (batch, n_freq, B, channels) for "
            "B >= 1 new frames, valid (batch, B) = 1, and the state_* tensors; it returns mask for the B frames that "
            "lag the input by stream_lookahead_frames (zeros for the frames before the start) and next_state_* to pass "
            "back as state_*. To end, send stream_lookahead_frames frames with valid = 0 (any features).")


def band_config(config: dict[str, Any]) -> BandConfig:
    """The run's BandConfig: ``config["train"]["model_options"]`` over the dataclass defaults."""
    options = dict(config.get("train", {}).get("model_options") or {})
    unknown = sorted(set(options) - set(BandConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown model options {unknown} for the band network")
    return BandConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})


def to_onnx(stream: StreamingBandNet) -> onnx.ModelProto:
    """Convert with tf2onnx; batch and block axes stay dynamic, state shapes are fixed."""
    layout = stream.layout
    signature = [
        tf.TensorSpec((None, layout.n_freq, None, layout.input_channels), tf.float32, name=FEATURES),
        tf.TensorSpec((None, None), tf.float32, name=VALID),
        *(tf.TensorSpec((None, *s.shape), tf.float32, name=s.input_name) for s in layout.states),
    ]
    names = [spec.name for spec in signature]

    @tf.function(input_signature=signature)
    def step(*args: tf.Tensor) -> dict[str, tf.Tensor]:
        return stream.model(dict(zip(names, args)), training=False)

    model, _ = tf2onnx.convert.from_function(step, input_signature=signature, opset=OPSET)
    return model


def onnx_step(session: ort.InferenceSession) -> Step:
    """An onnxruntime session as a dict-in, dict-out streaming step."""
    outputs = [o.name for o in session.get_outputs()]

    def step(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(outputs, session.run(outputs, inputs)))

    return step


def latency_ms(spec: SignalSpec, delay: int) -> float:
    """Algorithmic latency of a network delaying by ``delay`` frames: one analysis window plus
    the stream's lookahead frames (:func:`denoise_core.streaming.output_lookahead`)."""
    return (spec.n_fft + output_lookahead(delay, spec) * spec.hop_length) / spec.sample_rate * 1000.0


def stream_props(layout: StreamLayout, spec: SignalSpec) -> dict[str, str]:
    """The metadata keys that describe the streaming interface."""
    described = layout.to_dict()
    return {
        "streaming": "true",
        "stream_lookahead_frames": str(layout.delay),
        "stream_block_axis": "2",
        "stream_states": json.dumps(described["states"]),
        "stream_layout": json.dumps(described, sort_keys=True),
        "algorithmic_latency_ms": f"{latency_ms(spec, layout.delay):g}",
        "stream_protocol": PROTOCOL,
    }


def streaming_form(net: keras.Model, config: BandConfig) -> StreamingBandNet:
    """The offline network's streaming form, its transposed convolutions in their sub-pixel form."""
    return build_bandnet_stream(replace_transposed_convolutions(net), config)


def write_metadata(model: onnx.ModelProto, info: ModelInfo, layout: StreamLayout) -> None:
    attach_metadata(model, info)
    for key, value in stream_props(layout, info.signal).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string += f"; streaming form, blocks of any frame count, {layout.delay} frames of lookahead"


def check_stream_parity(stream: StreamingBandNet, onnx_path: Path, seed: int = 0, frames: int = 40) -> float:
    """Largest |onnxruntime - Keras| over a whole stream fed in random block sizes (1..7 frames)."""
    layout = stream.layout
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (1, layout.n_freq, frames, layout.input_channels)).astype(np.float32)
    sizes = rng.integers(1, 8, frames).tolist()
    got = stream_features(onnx_step(session), layout, x, sizes)
    want = stream_features(stream.step, layout, x, sizes)
    worst = float(np.max(np.abs(got - want)))
    if worst >= PARITY_TOLERANCE:
        raise ParityError(f"onnxruntime differs from the Keras streaming model by {worst:.3g} (limit {PARITY_TOLERANCE})")
    return worst


def export_stream(run: Path, out: Path, name: str | None = None, version: str | None = None,
                  checkpoint: str | None = None) -> ModelInfo:
    """Build the streaming model from the run, convert, attach metadata, save and check parity."""
    started = time.monotonic()
    net, config, result = load_run(run, checkpoint)
    stream = streaming_form(net, band_config(config))
    info = model_info(config, result, name or f"rainclean-{config['preset']}-stream", version)
    model = to_onnx(stream)
    write_metadata(model, info, stream.layout)
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    worst = check_stream_parity(stream, out)
    info.training["export_seconds"] = round(time.monotonic() - started, 1)
    write_metadata(model, info, stream.layout)
    onnx.save(model, str(out))
    print(f"exported streaming {info.name} {info.version} to {out} ({out.stat().st_size / 2**20:.2f} MB); "
          f"lookahead {stream.layout.delay} frames, latency {latency_ms(info.signal, stream.layout.delay):g} ms; "
          f"stream parity max |diff| {worst:.2e}", flush=True)
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.export_stream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, type=Path, help="run directory of a band network (presets band, band-mask, band-ctx)")
    p.add_argument("--out", required=True, type=Path, help="ONNX file to write")
    p.add_argument("--name", default=None, help="model name (default rainclean-<preset>-stream)")
    p.add_argument("--version", default=None, help="model version (default <date>-<commit>)")
    p.add_argument("--checkpoint", default=None, metavar="WEIGHTS",
                   help="export this weights file of the run (e.g. best-quality.weights.h5) instead of its finished model")
    args = p.parse_args(argv)
    try:
        export_stream(args.run, args.out, args.name, args.version, args.checkpoint)
    except (FileNotFoundError, ValueError, ParityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
