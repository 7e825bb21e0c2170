"""The self-describing model file: ONNX metadata keys, and loading with onnxruntime.

Training writes the metadata with :func:`metadata_props`; the service and the
evaluation read it back with :class:`OnnxModel`. Values are strings (ONNX
``metadata_props``); structured values are JSON.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from denoise_core.signal import (CHUNK_OVERLAP_SECONDS, CHUNK_SECONDS, MaskAndTaps, NetOutput, SignalSpec, enhance_audio, from_model_layout,
                                 to_model_layout)

#: metadata keys holding JSON values
JSON_KEYS = ("signal", "data_summary", "evaluation", "training")
INPUT_NAME = "features"
OUTPUT_NAME = "output"
#: the output names of a deep-filter file whose taps come apart from the mask (:class:`MaskAndTaps`)
SPLIT_OUTPUTS = ("mask", "taps")
#: after a call on more frames than this (about 10 s at 16 kHz, hop 256), onnxruntime hands
#: its arena's unused memory back, so one long input does not keep the process at its peak
SHRINK_ABOVE_FRAMES = 640


@dataclass
class ModelInfo:
    """Everything a model file says about itself."""

    name: str
    version: str
    preset: str
    signal: SignalSpec
    training_commit: str = "unknown"
    data_summary: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)

    def to_props(self) -> dict[str, str]:
        """Flat string metadata: JSON blobs plus the signal fields as plain keys."""
        s = self.signal
        props = {
            "model_name": self.name,
            "model_version": self.version,
            "preset": self.preset,
            "training_commit": self.training_commit,
            "signal": json.dumps(s.to_dict(), sort_keys=True),
            "data_summary": json.dumps(self.data_summary, sort_keys=True),
            "training": json.dumps(self.training, sort_keys=True),
            "evaluation": json.dumps(self.evaluation, sort_keys=True),
            # the same contract again as plain keys, for humans and other tools
            "sample_rate": str(s.sample_rate),
            "n_fft": str(s.n_fft),
            "hop_length": str(s.hop_length),
            "win_length": str(s.window_length),
            "window": s.window,
            "center": str(s.center).lower(),
            "magnitude": s.magnitude,
            "output": s.output,
            "norm_min": repr(s.norm_min),
            "norm_max": repr(s.norm_max),
            "frame_multiple": str(s.frame_multiple),
            "lookahead_frames": "unbounded" if s.lookahead_frames is None else str(s.lookahead_frames),
        }
        return props

    @classmethod
    def from_props(cls, props: dict[str, str]) -> "ModelInfo":
        missing = [k for k in ("model_name", "model_version", "signal") if k not in props]
        if missing:
            raise ValueError(f"model file lacks metadata: {', '.join(missing)}")
        loads = {k: json.loads(props.get(k) or "{}") for k in JSON_KEYS}
        return cls(
            name=props["model_name"],
            version=props["model_version"],
            preset=props.get("preset", "unknown"),
            signal=SignalSpec.from_dict(loads["signal"]),
            training_commit=props.get("training_commit", "unknown"),
            data_summary=loads["data_summary"],
            training=loads["training"],
            evaluation=loads["evaluation"],
        )


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cpu_session(path: Path, intra_op_threads: int, inter_op_threads: int, memory_pattern: bool = False,
                profile_prefix: str | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session with full graph optimisation and the given thread counts.

    ``memory_pattern`` off (the default): onnxruntime plans a memory pattern per input shape
    and keeps it, which with every upload a new length only adds resident memory
    (``docs/serving.md`` measures both). ``profile_prefix``: onnxruntime's profiler on, its
    JSON file named from that prefix (``session.end_profiling()`` returns the path)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_mem_pattern = memory_pattern
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def session_io(session: ort.InferenceSession) -> dict[str, Any]:
    """Names, shapes and types of a session's inputs and outputs."""
    def describe(args: list[Any]) -> list[dict[str, Any]]:
        return [{"name": a.name, "shape": [d if isinstance(d, int) else str(d) for d in a.shape], "type": a.type} for a in args]

    return {"inputs": describe(session.get_inputs()), "outputs": describe(session.get_outputs())}


class OnnxModel:
    """An ONNX denoiser loaded with onnxruntime, plus its signal contract."""

    def __init__(self, path: str | Path, intra_op_threads: int = 0, inter_op_threads: int = 1,
                 memory_pattern: bool = False) -> None:
        self.path = Path(path)
        self.session = cpu_session(self.path, intra_op_threads, inter_op_threads, memory_pattern)
        self.info = ModelInfo.from_props(dict(self.session.get_modelmeta().custom_metadata_map))
        self.sha256 = sha256_of(self.path)
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        if len(self.output_names) > 1 and tuple(self.output_names) != SPLIT_OUTPUTS:
            raise ValueError(f"{self.path}: outputs {self.output_names}; a model file has one output or {list(SPLIT_OUTPUTS)}")
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    @property
    def spec(self) -> SignalSpec:
        return self.info.signal

    def predict(self, batch: np.ndarray) -> NetOutput:
        """Run the network on its input ``(batch, freq, time, channels)`` (see ``signal.network_input``);
        the output comes back in that layout too, whichever layout the file uses (for a
        channels-first file, as a transposed view); a file with ``mask`` and ``taps`` outputs
        gives both as :class:`~denoise_core.signal.MaskAndTaps`."""
        options = self._shrink if batch.shape[2] > SHRINK_ABOVE_FRAMES else None
        layout = self.spec.layout
        outs = [from_model_layout(out, layout) for out in self.session.run(self.output_names, {self.input_name: to_model_layout(batch, layout)}, options)]
        return MaskAndTaps(*outs) if len(outs) > 1 else outs[0]

    def denoise(self, audio: np.ndarray, sample_rate: int, chunk_seconds: float = CHUNK_SECONDS, overlap_seconds: float = CHUNK_OVERLAP_SECONDS,
                attenuation_limit_db: float | None = None) -> np.ndarray:
        """Denoise ``(frames, channels)`` audio at any rate; same shape out.

        ``attenuation_limit_db`` (None: no limit) caps how far the noise is attenuated
        (see :func:`denoise_core.signal.limit_attenuation`).
        """
        return enhance_audio(audio, sample_rate, self.spec, self.predict, chunk_seconds, overlap_seconds,
                             attenuation_limit_db=attenuation_limit_db)

    def io_description(self) -> dict[str, Any]:
        return session_io(self.session)

