"""Where a training step's time goes: ``python -m training.step_profile --preset NAME [--top N]``.

Runs a preset's training step (``model.fit`` on one fixed batch of the dataset's mixer,
the trainer's own path) under TensorFlow's profiler and prints the seconds per step of
each TensorFlow op type and of each network layer, forward and backward apart. Nothing
else should run on the machine while it measures.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import tensorflow as tf

from training.datasets import Dataset
from training.step_benchmark import step_model


def op_times(logdir: Path) -> collections.Counter[str]:
    """Total seconds per TensorFlow op (its full name) in the profiler trace under ``logdir``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    times: collections.Counter[str] = collections.Counter()
    for path in logdir.rglob("*.xplane.pb"):
        space = xplane_pb2.XSpace()
        space.ParseFromString(path.read_bytes())
        for plane in space.planes:
            names = {key: meta.name for key, meta in plane.event_metadata.items()}
            for line in plane.lines:
                if line.name.startswith("tf_Compute"):
                    for event in line.events:
                        name = names.get(event.metadata_id, "")
                        if ":" in name and not name.startswith("Executor"):  # ops are "scope/name:Type"; not the executor's own events
                            times[name] += event.duration_ps / 1e12
    return times


def by_type(times: collections.Counter[str]) -> collections.Counter[str]:
    """Seconds per op type (``name:Type``)."""
    out: collections.Counter[str] = collections.Counter()
    for name, seconds in times.items():
        out[name.rsplit(":", 1)[-1]] += seconds
    return out


def by_layer(times: collections.Counter[str]) -> collections.Counter[str]:
    """Seconds per layer of the network or the signal graph, ``fwd``/``bwd`` (gradient) apart."""
    out: collections.Counter[str] = collections.Counter()
    for name, seconds in times.items():
        scopes = [re.sub(r"_\d+$", "", s) for s in name.split(":")[0].split("/") if s not in ("StatefulPartitionedCall", "gradient_tape")]
        # the training model's scope, then the network's or the signal layer's, then the layer's
        layer = "/".join(scopes[1:3]) if len(scopes) > 2 and scopes[0] == "signal_training" else scopes[0]
        out[("bwd " if "gradient_tape" in name else "fwd ") + layer] += seconds
    return out


def profile(data: Dataset, preset_name: str, steps: int, options: dict[str, Any] | None = None, batch_size: int = 8,
            crop_seconds: float = 2.0) -> collections.Counter[str]:
    """Op times of ``steps`` training steps of the preset (model options overridden by ``options``) with its own loss."""
    model, _, stream = step_model(data, preset_name, options or {}, batch_size, crop_seconds)
    x, y = next(stream)
    batches = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(batches, steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm up
    with tempfile.TemporaryDirectory() as tmp:
        tf.profiler.experimental.start(tmp)
        model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
        tf.profiler.experimental.stop()
        return op_times(Path(tmp))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.step_profile", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="build/dataset-extra-noise", help="dataset directory from `python -m training.data build`")
    p.add_argument("--preset", default="band-offline")
    p.add_argument("--model-options", type=json.loads, default=None, help="JSON model-config overrides")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop-seconds", type=float, default=2.0)
    p.add_argument("--top", type=int, default=12, help="rows of each table")
    args = p.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    times = profile(Dataset.open(args.data), args.preset, args.steps, args.model_options, args.batch_size, args.crop_seconds)
    total = sum(times.values())
    print(f"{args.preset}: {total / args.steps:.3f} s of ops per training step (one intra- and inter-op thread)")
    for title, table in (("op type", by_type(times)), ("layer", by_layer(times))):
        print(f"{'s/step':>8} {'share':>6}  {title}")
        for name, seconds in table.most_common(args.top):
            print(f"{seconds / args.steps:8.4f} {seconds / total:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
