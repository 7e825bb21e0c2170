"""Several trained networks as one: the mean of their output waveforms, scored on validation.

``python -m training.ensemble --data DIR WEIGHTS [WEIGHTS ...]`` loads each weights file into
the network of the run that wrote it (its ``config.json`` beside it; every run on one signal
contract), enhances each mixture of the validation split with every network through the
signal contract, averages the estimates sample by sample and scores that mean as the
trainer's quality check scores one network (``--split test`` scores the test split instead,
for information). The same mean, in the training graph, is what a run follows when
``--teacher`` names several weights files (training.distill).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from training.evaluation.ship_rule import TARGETS, quality_score


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.ensemble", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", nargs="+", type=Path, help="weights files of trained runs (e.g. RUN/best-quality.weights.h5)")
    p.add_argument("--data", required=True, type=Path, help="dataset directory whose split scores the mean")
    p.add_argument("--split", choices=("val", "test"), default="val",
                   help="the split scored: validation (the trainer's checks; default) or test (for information only)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads (default: one per core)")
    args = p.parse_args(argv)
    import tensorflow as tf

    from training.datasets import Dataset
    from training.distill import trained_network
    from training.quality import network_enhancer, score_enhancer

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    try:
        members = [trained_network(w) for w in args.weights]
        arrays = Dataset.open(args.data).split(args.split)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    specs = {spec for _, spec in members}
    if len(specs) > 1:
        print("error: the runs differ in their signal contracts", file=sys.stderr)
        return 2
    enhancers = [network_enhancer(net, spec) for net, spec in members]
    figures = score_enhancer(lambda noisy: np.mean([enhance(noisy) for enhance in enhancers], axis=0), arrays)
    figures["score"] = quality_score(figures)
    split = "validation" if args.split == "val" else "test"
    print(f"the mean of {len(members)} networks' waveforms on the {split} split ({len(arrays.lengths)} mixtures)")
    print(" ".join(f"{k} {figures[k]:.4f}" for k in (*TARGETS, "score")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
