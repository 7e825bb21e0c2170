"""Time a design's exported network before training it: ``python -m training.onnx_benchmark --preset band --model-options JSON ...``.

For each ``--preset`` and each ``--model-options`` JSON given, the untrained network is
converted to ONNX exactly as ``training.export`` converts a trained one, and onnxruntime
runs it on one thread (as ``make benchmark`` does) on random network input of each
``--seconds`` length. It prints the median seconds of network time per audio second.
Weights do not change the time, so a design's speed is known before its training run.
``--form`` names the export forms to time (``training.export.EXPORT_FORMS``: the band
network written straight to ONNX, tf2onnx after the sub-pixel rewrite, tf2onnx as is), one
row per design and form. ``--int8`` adds a row per design and form for the same file with every
convolution and matrix product quantised as ``training.quantize`` writes them, calibrated on
random input (a file's time does not depend on its ranges). A shipped int8 file keeps its
sensitive nodes float, chosen on the trained network, and costs more than this row.
Nothing else should run on the machine while it measures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import onnx

from denoise_core.model_file import cpu_session
from denoise_core.signal import CHUNK_SECONDS, SignalSpec
from training.export import EXPORT_FORMS, export_model
from training.onnx_profile import random_network_input
from training.presets import get_preset
from training.quantize import quantize_every_node


def seconds_per_audio_second(path: Path, spec: SignalSpec, seconds: float, repeats: int) -> float:
    """Median onnxruntime seconds (one thread) per audio second on ``seconds`` of random input."""
    session = cpu_session(path, intra_op_threads=1, inter_op_threads=1)
    name = session.get_inputs()[0].name
    x = random_network_input(spec, seconds)
    session.run(None, {name: x})  # warm-up
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, {name: x})
        runs.append(time.perf_counter() - started)
    return statistics.median(runs) / seconds


def time_design(preset_name: str, options: dict[str, Any], seconds: list[float], repeats: int,
                form: str = "graph", int8: bool = False) -> dict[str, Any]:
    """Parameters and seconds per audio second at each length for one design (``s_per_s``),
    and with ``int8`` those of its all-int8 file as well (``int8_s_per_s``)."""
    preset = get_preset(preset_name)
    spec = preset.signal
    options = preset.options(options)
    net = preset.build(spec, options)
    result: dict[str, Any] = {"preset": preset_name, "options": options, "parameters": int(net.count_params())}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "design.onnx"
        model, spec = export_model(net, spec, form)
        onnx.save(model, str(path))
        result["s_per_s"] = {s: seconds_per_audio_second(path, spec, s, repeats) for s in seconds}
        if int8:
            quantised = Path(tmp) / "design-int8.onnx"
            quantize_every_node(path, quantised, [random_network_input(spec, min(seconds))])
            result["int8_s_per_s"] = {s: seconds_per_audio_second(quantised, spec, s, repeats) for s in seconds}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.onnx_benchmark", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", action="append", default=None, help="preset to time; repeat to compare (default: band)")
    p.add_argument("--model-options", type=json.loads, action="append", default=None,
                   help="JSON model-config overrides; repeat to compare designs (default: the preset as is)")
    p.add_argument("--seconds", type=float, nargs="+", default=[5.0, CHUNK_SECONDS],
                   help=f"input lengths (default 5 s and {CHUNK_SECONDS:g} s, the service's chunk)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--form", choices=EXPORT_FORMS, action="append", default=None,
                   help="export form to time; repeat to compare (default: graph)")
    p.add_argument("--int8", action="store_true", help="also time each design's file with every Conv and MatMul quantised")
    args = p.parse_args(argv)
    lengths = "".join(f" {f'{s:g} s s/s':>10}" for s in args.seconds)
    print("onnxruntime, one thread, untrained networks converted as training.export converts")
    print(f"{'preset':<10} {'model options':<50} {'form':<10} {'parameters':>10}{lengths}")
    for preset in args.preset or ["band"]:
        for options in args.model_options or [{}]:
            for form in args.form or ["graph"]:
                r = time_design(preset, options, args.seconds, args.repeats, form, args.int8)
                for kind, key in ((form, "s_per_s"), (f"{form}-int8", "int8_s_per_s"))[: 2 if args.int8 else 1]:
                    cells = "".join(f" {r[key][s]:>10.4f}" for s in args.seconds)
                    print(f"{preset:<10} {json.dumps(r['options']):<50} {kind:<10} {r['parameters']:>10}{cells}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
