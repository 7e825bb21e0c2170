"""Writing the evaluation figures back into the model file's ONNX metadata."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

EVALUATION_KEY = "evaluation"


def content_sha256(path: str | Path) -> str:
    """sha256 of the model with its ``evaluation`` metadata removed.

    Unlike the file's sha256 this does not change when the figures are written back,
    so a report can name the weights it measured before and after ``--write-metadata``.
    """
    import onnx

    model = onnx.load(str(path))
    keep = [(p.key, p.value) for p in model.metadata_props if p.key != EVALUATION_KEY]
    del model.metadata_props[:]
    for key, value in keep:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def write_evaluation(path: str | Path, evaluation: dict[str, Any]) -> None:
    """Set the ``evaluation`` metadata key (JSON) and save; everything else is kept."""
    import onnx

    path = Path(path)
    model = onnx.load(str(path))
    value = json.dumps(evaluation, sort_keys=True)
    for prop in model.metadata_props:
        if prop.key == EVALUATION_KEY:
            prop.value = value
            break
    else:
        entry = model.metadata_props.add()
        entry.key, entry.value = EVALUATION_KEY, value
    tmp = path.with_name(path.name + ".tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)


def evaluation_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The compact figures stored in the model file (and shown by /model-info)."""
    res, systems = report["results"], report["systems"]
    metrics = ("si_sdr", "pesq", "stoi", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "seed_mse")
    return {
        "date": report["environment"]["date"],
        "data": {k: report["data"][k] for k in ("path", "split", "mixtures_evaluated", "seconds_evaluated")},
        "overall": {s: {m: res["overall"][s][m] for m in metrics} for s in report["order"]},
        "margins": {s: res["margins"][s]["overall"] for s in res["margins"]},
        "cpu_s_per_audio_s": {s: systems[s]["cpu_s_per_audio_s"] for s in report["order"]},
        "wall_s_per_audio_s": {s: systems[s]["wall_s_per_audio_s"] for s in report["order"]},
        "model_content_sha256": report["model"]["content_sha256"],
        "command": report["command"],
    }
