"""The average of several checkpoints of one network, scored on the validation split.

``python -m training.checkpoint_average --run RUN --name NAME --data DIR WEIGHTS [WEIGHTS ...]``
builds ``RUN``'s network from its ``config.json``, averages the weights of the given files
(each a weights file in a run directory whose ``config.json`` describes the same network:
checkpoints of one run, or of runs fine-tuned from one another), writes
``RUN/NAME.weights.h5``, scores it on the whole validation split as the trainer's quality
check does and writes those figures beside it (``RUN/NAME.quality.json``), where
``python -m training.export --run RUN --checkpoint NAME.weights.h5`` finds them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np

from denoise_core.signal import SignalSpec
from training.evaluation.ship_rule import TARGETS, quality_score

WEIGHTS_SUFFIX = ".weights.h5"
QUALITY_SUFFIX = ".quality.json"


class NetworkMismatch(ValueError):
    """A weights file comes from a run whose network differs from the target run's."""


def quality_sidecar(weights: Path) -> Path:
    """Where the validation figures of an averaged weights file are written."""
    return weights.with_name(weights.name.removesuffix(WEIGHTS_SUFFIX) + QUALITY_SUFFIX)


def _network_key(config: dict[str, Any]) -> tuple[str, str, str]:
    """What fixes a run's network: its preset, model options, width and signal contract."""
    train = config.get("train", {})
    options = json.dumps(train.get("model_options") or {}, sort_keys=True)
    return config["preset"], f"{options} width {train.get('width', 1.0)}", json.dumps(config["signal"], sort_keys=True)


def build_run_network(run: Path) -> tuple[keras.Model, dict[str, Any]]:
    """The untrained network of ``run`` (from its ``config.json``) and that config."""
    from training.export import network_from_config

    config = json.loads((run / "config.json").read_text())
    return network_from_config(config), config


def average_weights(net: keras.Model, config: dict[str, Any], files: list[Path]) -> keras.Model:
    """``net`` given the mean of the weights in ``files`` (at least one), each loaded in turn;
    :class:`NetworkMismatch` if a file's run describes another network than ``config``."""
    if not files:
        raise ValueError("no weights files to average")
    key = _network_key(config)
    total: list[np.ndarray] | None = None
    for path in files:
        source = path.parent / "config.json"
        if not source.is_file():
            raise FileNotFoundError(f"{path} is not in a run directory (no {source})")
        if _network_key(json.loads(source.read_text())) != key:
            raise NetworkMismatch(f"{path}: its run's network differs from the target run's")
        net.load_weights(str(path))
        weights = [np.asarray(w, np.float64) for w in net.get_weights()]
        total = weights if total is None else [t + w for t, w in zip(total, weights)]
    net.set_weights([(t / len(files)).astype(w.dtype) for t, w in zip(total, net.get_weights())])
    return net


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.checkpoint_average", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", nargs="+", type=Path, help="weights files to average (e.g. RUN/quality-6000.weights.h5)")
    p.add_argument("--run", required=True, type=Path, help="run whose network they are; the average is written into it")
    p.add_argument("--name", required=True, help="file name of the average, without .weights.h5")
    p.add_argument("--data", required=True, type=Path, help="dataset directory whose validation split scores it")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads (default: one per core)")
    args = p.parse_args(argv)
    if "/" in args.name or not args.name:
        p.error("--name is a file name, not a path")
    import tensorflow as tf

    from training.datasets import Dataset
    from training.quality import score_split

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    try:
        net, config = build_run_network(args.run)
        net = average_weights(net, config, args.weights)
        arrays = Dataset.open(args.data).split("val")
    except (FileNotFoundError, NetworkMismatch) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.run / f"{args.name}{WEIGHTS_SUFFIX}"
    net.save_weights(str(out))
    figures = score_split(net, SignalSpec.from_dict(config["signal"]), arrays)
    figures["score"] = quality_score(figures)
    quality_sidecar(out).write_text(json.dumps({"sources": [str(f) for f in args.weights], **figures}, indent=1) + "\n")
    print(f"wrote {out}: the mean of {len(args.weights)} checkpoints")
    print(" ".join(f"{k} {figures[k]:.4f}" for k in (*TARGETS, "score")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
