"""Where a model file's network time goes: ``python -m training.onnx_profile FILE [--seconds 10]``.

Runs the file's network on one onnxruntime thread (as ``make benchmark`` does) on random input
of ``--seconds`` of audio under onnxruntime's profiler, and prints each operator type's share
of the kernel time, then the ``--top`` nodes of the optimised graph with their input and
output shapes. Nothing else should run on the machine while it measures.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from denoise_core.model_file import ModelInfo, cpu_session
from denoise_core.signal import SignalSpec, n_frames, to_model_layout


@dataclass(frozen=True)
class NodeTime:
    """One node of the optimised graph: its total kernel microseconds over the profiled runs."""

    name: str
    op: str
    microseconds: int
    inputs: list[list[int]]
    outputs: list[list[int]]


def random_network_input(spec: SignalSpec, seconds: float) -> np.ndarray:
    """Network input for ``seconds`` of audio under ``spec``, random, in the model file's layout (float32)."""
    frames = n_frames(int(seconds * spec.sample_rate), spec)
    return to_model_layout(np.random.default_rng(0).uniform(0, 1, (1, spec.n_freq, frames, spec.input_channels)), spec.layout)


def profile(path: Path, seconds: float, repeats: int) -> list[NodeTime]:
    """Kernel time per node over ``repeats`` runs on ``seconds`` of random network input, largest first."""
    with tempfile.TemporaryDirectory() as tmp:
        session = cpu_session(path, intra_op_threads=1, inter_op_threads=1, profile_prefix=str(Path(tmp) / "profile"))
        spec = ModelInfo.from_props(dict(session.get_modelmeta().custom_metadata_map)).signal
        feed = {session.get_inputs()[0].name: random_network_input(spec, seconds)}
        session.run(None, feed)  # warm-up
        for _ in range(repeats):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: collections.Counter[str] = collections.Counter()
    shapes: dict[str, tuple[str, list[list[int]], list[list[int]]]] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            name = event["name"][: -len("_kernel_time")]
            totals[name] += int(event["dur"])
            args = event["args"]
            shapes[name] = (args["op_name"], [next(iter(d.values())) for d in args.get("input_type_shape", [])],
                            [next(iter(d.values())) for d in args.get("output_type_shape", [])])
    return [NodeTime(name, shapes[name][0], us, shapes[name][1], shapes[name][2]) for name, us in totals.most_common()]


def report(nodes: list[NodeTime], top: int) -> str:
    """Operator types' shares of the kernel time, then the ``top`` nodes'."""
    total = sum(n.microseconds for n in nodes) or 1
    by_op: collections.Counter[str] = collections.Counter()
    for n in nodes:
        by_op[n.op] += n.microseconds
    lines = ["share  operator type"] + [f"{100 * us / total:5.1f}% {op}" for op, us in by_op.most_common()]
    lines += ["", "share  node (inputs -> outputs)"]
    lines += [f"{100 * n.microseconds / total:5.1f}% {n.op} {n.name}: {n.inputs} -> {n.outputs}" for n in nodes[:top]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.onnx_profile", description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, help="an exported model file")
    p.add_argument("--seconds", type=float, default=10.0, help="audio length of the input (default: the service's 10-s chunk)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--top", type=int, default=15, help="nodes to list")
    args = p.parse_args(argv)
    if not args.model.is_file():
        p.error(f"no model file {args.model}")
    nodes = profile(args.model, args.seconds, args.repeats)
    print(f"{args.model}: onnxruntime {ort.__version__}, one thread, {args.seconds:g} s of input, {args.repeats} runs")
    print(report(nodes, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
