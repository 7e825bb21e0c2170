"""Time a design's exported network before training it: ``python -m training.onnx_benchmark --preset band --model-options JSON ...``.

For each ``--preset`` and each ``--model-options`` JSON given, the untrained network is
converted to ONNX exactly as ``training.export`` converts a trained one, and onnxruntime
runs it on one thread (as ``make benchmark`` does) on random network input of each
``--seconds`` length. It prints the median seconds of network time per audio second.
Weights do not change the time, so a design's speed is known before its training run.
``--form`` names the export forms to time (``training.export.EXPORT_FORMS``: the band
network written straight to ONNX, tf2onnx after the sub-pixel rewrite, tf2onnx as is), one
row per design and form.
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
                form: str = "graph") -> dict[str, Any]:
    """Parameters and seconds per audio second at each length for one design."""
    preset = get_preset(preset_name)
    spec = preset.signal
    options = preset.options(options)
    net = preset.build(spec, options)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "design.onnx"
        model, spec = export_model(net, spec, form)
        onnx.save(model, str(path))
        timings = {s: seconds_per_audio_second(path, spec, s, repeats) for s in seconds}
    return {"preset": preset_name, "options": options, "parameters": int(net.count_params()), "s_per_s": timings}


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
    args = p.parse_args(argv)
    lengths = "".join(f" {f'{s:g} s s/s':>10}" for s in args.seconds)
    print("onnxruntime, one thread, untrained networks converted as training.export converts")
    print(f"{'preset':<10} {'model options':<50} {'form':<10} {'parameters':>10}{lengths}")
    for preset in args.preset or ["band"]:
        for options in args.model_options or [{}]:
            for form in args.form or ["graph"]:
                r = time_design(preset, options, args.seconds, args.repeats, form)
                cells = "".join(f" {r['s_per_s'][s]:>10.4f}" for s in args.seconds)
                print(f"{preset:<10} {json.dumps(r['options']):<50} {form:<10} {r['parameters']:>10}{cells}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
