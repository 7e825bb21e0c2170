"""Static int8 quantisation of an exported model file.

    python -m training.quantize --model models/denoiser.onnx --data build/dataset --out build/int8/denoiser.onnx

The network's inputs for calibration are the ones the signal contract feeds it when the model
denoises real mixtures of a dataset split (``--split``, validation by default), so the
activation ranges are those of real use. Weights are int8 per output channel, activations
uint8, written as QuantizeLinear/DequantizeLinear pairs (QDQ) around the chosen operators;
the file keeps the source's metadata and records how it was quantised under ``training``.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from denoise_core.model_file import OnnxModel
from denoise_core.signal import enhance_audio, to_model_layout
from training.datasets import Dataset
from training.export import attach_metadata

#: operators quantised by default: the convolutions (the matrix products stay float)
DEFAULT_OPS = ("Conv",)


def calibration_inputs(model: OnnxModel, waves: list[np.ndarray]) -> list[np.ndarray]:
    """The network inputs (in the file's own layout) that denoising ``waves`` feeds the model."""
    seen: list[np.ndarray] = []

    def recording_predict(batch: np.ndarray) -> np.ndarray:
        seen.append(np.ascontiguousarray(to_model_layout(batch, model.spec.layout), dtype=np.float32))
        return model.predict(batch)

    rate = model.spec.sample_rate
    for wave in waves:
        enhance_audio(wave[:, None].astype(np.float32), rate, model.spec, recording_predict)
    return seen


class _Feeds(CalibrationDataReader):
    def __init__(self, name: str, inputs: list[np.ndarray]) -> None:
        self._it: Iterator[dict[str, np.ndarray]] = iter({name: x} for x in inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def split_waves(data: Path, split: str, count: int) -> list[np.ndarray]:
    """The first ``count`` noisy mixtures of a dataset split, each cut to its length."""
    arrays = Dataset.open(data).split(split)
    n = min(count, len(arrays.lengths))
    return [arrays.noisy[i, : int(arrays.lengths[i])] for i in range(n)]


def quantize_file(src: Path, out: Path, waves: list[np.ndarray], ops: tuple[str, ...] = DEFAULT_OPS) -> None:
    """Write ``src`` quantised to int8 (QDQ), calibrated on the network inputs of ``waves``."""
    model = OnnxModel(src, intra_op_threads=1)
    inputs = calibration_inputs(model, waves)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out), _Feeds(model.input_name, inputs), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        op_types_to_quantize=list(ops))
    quantized = onnx.load(str(out))
    training = dict(model.info.training or {})
    training["quantization"] = {"kind": "int8 static QDQ", "operators": list(ops), "weights": "int8 per channel",
                                "activations": "uint8", "calibration_mixtures": len(waves),
                                "calibration_batches": len(inputs), "source_sha256": model.sha256}
    attach_metadata(quantized, replace(model.info, version=f"{model.info.version}-int8", training=training))
    onnx.save(quantized, str(out))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.quantize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="exported model file (float)")
    p.add_argument("--data", required=True, type=Path, help="built dataset directory")
    p.add_argument("--out", required=True, type=Path, help="int8 model file to write")
    p.add_argument("--split", default="val", choices=("train", "val"), help="split whose mixtures calibrate (default val)")
    p.add_argument("--count", type=int, default=32, help="mixtures used for calibration (default 32)")
    p.add_argument("--ops", nargs="+", default=list(DEFAULT_OPS), help="operator types to quantise (default Conv)")
    args = p.parse_args(argv)
    if args.count < 1:
        p.error("--count must be at least 1")
    quantize_file(args.model, args.out, split_waves(args.data, args.split, args.count), tuple(args.ops))
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
