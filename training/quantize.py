"""Static int8 quantisation of an exported model file, layer by layer as validation allows.

    python -m training.quantize --model models/denoiser.onnx --data build/dataset --out build/int8/denoiser.onnx

The network's inputs for calibration are the ones the signal contract feeds it when the model
denoises real mixtures of a dataset split (``--split``, validation by default), so the
activation ranges are those of real use. Weights are int8 per output channel, activations
uint8, written as QuantizeLinear/DequantizeLinear pairs (QDQ) around the chosen operators.

Every node of the chosen operator types whose weights are constant is a candidate. Each is
first quantised alone and scored on further mixtures of the split (``--screen-count``): a node
whose mean SI-SDR falls by more than ``--max-drop-db`` against the float file (or, with
``--max-dnsmos-drop``, whose mean DNSMOS OVRL falls by more than that) stays float.
The others are then added one at a time, the most multiply-adds per frame first, each kept
only if the file with it still stays within every tolerance. ``--nodes`` names the nodes to
quantise instead, and only the whole file is scored. The file keeps the source's metadata and
records under ``training`` how it was quantised, each screened candidate's drops alone and the
drops of the whole file.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from denoise_core.model_file import OnnxModel
from denoise_core.signal import enhance_audio, to_model_layout
from training.datasets import Dataset, SplitArrays
from training.export import attach_metadata
from training.quality import score_enhancer

#: operators quantised by default: the convolutions and the matrix products
DEFAULT_OPS = ("Conv", "MatMul")
#: the largest mean SI-SDR drop (dB) a node alone, and the quantised file, may cost
DEFAULT_MAX_DROP_DB = 0.05
#: a figure (a key of ``training.quality.METRICS``) -> the largest mean drop allowed
Tolerances = dict[str, float]
#: a figure -> its mean drop against the float file
Drops = dict[str, float]


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


def mean_figures(model: OnnxModel, mixtures: SplitArrays, figures: tuple[str, ...]) -> dict[str, float]:
    """Mean of each of ``figures`` of ``model``'s output on ``mixtures``."""
    rate = model.spec.sample_rate
    return score_enhancer(lambda noisy: model.denoise(noisy[:, None].astype(np.float32), rate)[:, 0], mixtures, figures)


def name_weighted_nodes(model: onnx.ModelProto, ops: tuple[str, ...]) -> list[str]:
    """Names of the nodes of types ``ops`` whose second input (the weights) is a constant,
    naming every unnamed node of the graph first (``{op}_{index}``)."""
    constants = {i.name for i in model.graph.initializer}
    names = []
    for index, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{index}"
        if node.op_type in ops and len(node.input) > 1 and node.input[1] in constants:
            names.append(node.name)
    return names


def tolerated(drops: Drops, tolerances: Tolerances) -> bool:
    """Whether every figure of ``tolerances`` dropped by at most its tolerance."""
    return all(drops[figure] <= limit for figure, limit in tolerances.items())


def within(drops: dict[str, Drops], tolerances: Tolerances) -> list[str]:
    """The nodes whose measured drops are all within ``tolerances``, in their order."""
    return [name for name, drop in drops.items() if tolerated(drop, tolerances)]


def macs_per_frame(model: onnx.ModelProto, names: list[str]) -> dict[str, int]:
    """Multiply-adds per frame (batch 1) of each named Conv or MatMul node, from its constant
    weights and its output's static dimensions (those onnx shape inference leaves symbolic,
    batch and frames, counted once)."""
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim if d.HasField("dim_value")]
              for v in [*model.graph.value_info, *model.graph.output]}
    costs = {}
    for node in model.graph.node:
        if node.name in names:
            w = weights[node.input[1]]
            out_channels = w[0] if node.op_type == "Conv" else w[-1]
            costs[node.name] = int(np.prod(w)) * int(np.prod(shapes.get(node.output[0], [out_channels]))) // out_channels
    return costs


def greedy_within(candidates: list[str], drop_of: Callable[[list[str]], Drops], tolerances: Tolerances) -> list[str]:
    """The nodes kept when ``candidates`` are added in order, each only if ``drop_of`` the set
    with it stays within ``tolerances``."""
    kept: list[str] = []
    for node in candidates:
        if tolerated(drop_of([*kept, node]), tolerances):
            kept.append(node)
    return kept


def prepare(src: Path, prepared: Path, ops: tuple[str, ...]) -> list[str]:
    """Write ``src`` pre-processed for quantisation to ``prepared``, its nodes named, and return
    the candidates' names (those the record and ``--nodes`` use)."""
    quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
    graph = onnx.load(str(prepared))
    names = name_weighted_nodes(graph, ops)
    onnx.save(graph, str(prepared))
    return names


def candidate_nodes(src: Path, ops: tuple[str, ...] = DEFAULT_OPS) -> list[str]:
    """The names of ``src``'s quantisation candidates, as the record and ``--nodes`` give them."""
    with tempfile.TemporaryDirectory() as tmp:
        return prepare(src, Path(tmp) / "prepared.onnx", ops)


class _Quantiser:
    """One prepared float graph quantised to any subset of its nodes, calibrated once."""

    def __init__(self, src: Path, workdir: Path, ops: tuple[str, ...]) -> None:
        self.prepared = workdir / "prepared.onnx"
        self.cache = workdir / "ranges.json"
        self.candidates = prepare(src, self.prepared, ops)
        prepared = onnx.load(str(self.prepared))
        self.macs = macs_per_frame(prepared, self.candidates)
        self.input_name = prepared.graph.input[0].name
        self.ops = ops
        self.inputs: list[np.ndarray] = []

    def calibrate_on(self, inputs: list[np.ndarray]) -> None:
        """The network inputs that calibrate every file written after."""
        self.inputs = inputs

    def write(self, nodes: list[str], out: Path) -> None:
        """Write the graph with ``nodes`` quantised (the float graph where there are none)."""
        if not nodes:  # onnxruntime reads an empty node list as "every node"
            shutil.copyfile(self.prepared, out)
            return
        quantize_static(str(self.prepared), str(out), _Feeds(self.input_name, self.inputs), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        op_types_to_quantize=list(self.ops), nodes_to_quantize=nodes, calibration_cache_path=self.cache)


class UnknownNodes(ValueError):
    """Nodes named for quantisation that are not candidates of the graph."""


def quantize_file(src: Path, out: Path, waves: list[np.ndarray], screen: SplitArrays, ops: tuple[str, ...] = DEFAULT_OPS,
                  tolerances: Tolerances | None = None, nodes: list[str] | None = None) -> dict[str, object]:
    """Write ``src`` quantised to int8 (QDQ), calibrated on the network inputs of ``waves``, at
    the nodes the screen on ``screen`` keeps within ``tolerances`` (by default SI-SDR within
    :data:`DEFAULT_MAX_DROP_DB`) alone and together (the module's docstring), or at exactly
    ``nodes`` (:class:`UnknownNodes` if one is not a candidate, before any calibration or
    writing); returns the record."""
    tolerances = tolerances or {"si_sdr": DEFAULT_MAX_DROP_DB}
    figures = tuple(tolerances)
    with tempfile.TemporaryDirectory() as tmp:
        quantiser = _Quantiser(src, Path(tmp), ops)
        unknown = [n for n in nodes or [] if n not in quantiser.candidates]
        if unknown:
            raise UnknownNodes(f"not quantisable nodes of {src.name}: {unknown}; candidates: {quantiser.candidates}")
        model = OnnxModel(src, intra_op_threads=1)
        inputs = calibration_inputs(model, waves)
        quantiser.calibrate_on(inputs)
        reference = mean_figures(model, screen, figures)
        out.parent.mkdir(parents=True, exist_ok=True)

        measured: dict[frozenset[str], Drops] = {}

        def drop_of(subset: list[str]) -> Drops:
            """The drops of the file with ``subset`` quantised, each set written and scored once
            (the writer is deterministic)."""
            key = frozenset(subset)
            if key not in measured:
                trial = Path(tmp) / "trial.onnx"
                quantiser.write(subset, trial)
                scored = mean_figures(OnnxModel(trial, intra_op_threads=1), screen, figures)
                measured[key] = {figure: round(reference[figure] - scored[figure], 4) for figure in figures}
            return measured[key]

        if nodes is not None:
            drops: dict[str, Drops] = {}
            kept = [n for n in quantiser.candidates if n in nodes]
        else:
            drops = {node: drop_of([node]) for node in quantiser.candidates}
            by_cost = sorted(within(drops, tolerances), key=lambda node: -quantiser.macs[node])
            kept = greedy_within(by_cost, drop_of, tolerances)
        quantiser.write(kept, out)
        whole = drop_of(kept)
    macs = sum(quantiser.macs.values())
    record = {"kind": "int8 static QDQ", "operators": list(ops), "weights": "int8 per channel", "activations": "uint8",
              "calibration_mixtures": len(waves), "calibration_batches": len(inputs), "source_sha256": model.sha256,
              "screen_mixtures": len(screen.lengths), "selection": "named" if nodes is not None else "screen",
              "tolerances": tolerances, "node_drops": drops, "quantised_nodes": len(kept),
              "float_nodes": [n for n in quantiser.candidates if n not in kept], "drops": whole,
              "quantised_macs_share": round(sum(quantiser.macs[n] for n in kept) / macs, 4) if macs else 0.0}
    quantized = onnx.load(str(out))
    training = {**(model.info.training or {}), "quantization": record}
    attach_metadata(quantized, replace(model.info, version=f"{model.info.version}-int8", training=training))
    onnx.save(quantized, str(out))
    return record


def quantize_every_node(src: Path, out: Path, inputs: list[np.ndarray], ops: tuple[str, ...] = DEFAULT_OPS) -> int:
    """Write ``src`` with every candidate node quantised (QDQ, as :func:`quantize_file` writes
    them), calibrated on the network ``inputs`` given, and return how many nodes that is; no
    scoring and no metadata: the file's time is what it is for, not its quality."""
    with tempfile.TemporaryDirectory() as tmp:
        quantiser = _Quantiser(src, Path(tmp), ops)
        quantiser.calibrate_on(inputs)
        quantiser.write(quantiser.candidates, out)
        return len(quantiser.candidates)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.quantize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="exported model file (float)")
    p.add_argument("--data", required=True, type=Path, help="built dataset directory")
    p.add_argument("--out", required=True, type=Path, help="int8 model file to write")
    p.add_argument("--split", default="val", choices=("train", "val"), help="split whose mixtures calibrate and screen (default val)")
    p.add_argument("--count", type=int, default=32, help="mixtures used for calibration, the split's first (default 32)")
    p.add_argument("--screen-count", type=int, default=40, help="mixtures after those that score each node (default 40)")
    p.add_argument("--max-drop-db", type=float, default=DEFAULT_MAX_DROP_DB,
                   help=f"largest mean SI-SDR drop a node alone, and the whole file, may cost (default {DEFAULT_MAX_DROP_DB})")
    p.add_argument("--max-dnsmos-drop", type=float, default=None,
                   help="largest mean DNSMOS OVRL drop a node alone, and the whole file, may cost (default: not screened)")
    p.add_argument("--ops", nargs="+", default=list(DEFAULT_OPS), help="operator types to quantise (default Conv MatMul)")
    p.add_argument("--nodes", nargs="+", default=None,
                   help="quantise exactly these nodes (names as the record's float_nodes and node_drops give them); no screen")
    args = p.parse_args(argv)
    if args.count < 1 or args.screen_count < 1:
        p.error("--count and --screen-count must be at least 1")
    arrays = Dataset.open(args.data).split(args.split)
    calibration = [noisy[:length] for noisy, length in zip(arrays.noisy[: args.count], arrays.lengths)]
    screen = arrays.rows(args.count, args.screen_count)
    if not len(screen.lengths):
        p.error(f"the {args.split} split has no mixtures after the first {args.count} to screen with")
    tolerances = {"si_sdr": args.max_drop_db, **({"dnsmos_ovrl": args.max_dnsmos_drop} if args.max_dnsmos_drop is not None else {})}
    try:
        record = quantize_file(args.model, args.out, calibration, screen, tuple(args.ops), tolerances, args.nodes)
    except UnknownNodes as error:
        p.error(str(error))
    drops = record["node_drops"]

    def shown(d: Drops) -> str:
        return " ".join(f"{figure} {value:+.4f}" for figure, value in d.items())

    floats = record["float_nodes"]
    print(f"{record['quantised_nodes']} of {record['quantised_nodes'] + len(floats)} nodes quantised; kept float"
          + (" (drops alone): " if drops else ": ")
          + (", ".join(f"{n} ({shown(drops[n])})" if n in drops else n for n in floats) or "none"))
    print(f"mean drops of the file on {len(screen.lengths)} mixtures: {shown(record['drops'])}; "
          f"share of the candidates' multiply-adds quantised: {record['quantised_macs_share']:.3f}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
