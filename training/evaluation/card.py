"""The model card (``models/README.md``), generated from an evaluation report.

Every figure in the card comes from ``report.json`` (which holds the model file's
metadata as well); nothing is typed by hand. Regenerate it with the evaluation
command, or from an existing report:

    python -m training.evaluation.card --report build/eval/denoiser/report.json --out models/README.md
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from training.evaluation import report as R


def _bullets(value: Any, indent: int = 0) -> list[str]:
    """A nested dict/list as a Markdown bullet list, whatever its shape."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v and not (isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v)):
                lines.append(f"{pad}- {k}:")
                lines += _bullets(v, indent + 1)
            else:
                lines.append(f"{pad}- {k}: {_scalar(v)}")
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)):
                lines += _bullets(v, indent)
            else:
                lines.append(f"{pad}- {_scalar(v)}")
    else:
        lines.append(f"{pad}- {_scalar(value)}")
    return lines


def _scalar(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(_scalar(x) for x in v)
    if isinstance(v, str) and ("\n" not in v) and (v.startswith("python") or v.startswith("make") or "/" in v):
        return f"`{v}`"
    return str(v)


def _duration(seconds: float) -> str:
    minutes = seconds / 60.0
    return f"{minutes:.1f} min" if minutes < 120 else f"{minutes / 60.0:.2f} h"


def _earlier_stages(training: dict[str, Any], key: str = "earlier_stages") -> list[dict[str, Any]]:
    """The recorded earlier training stages (``key``: the model's own, or its teacher's) whose
    time is known, earliest first."""
    stages = training.get(key)
    if not isinstance(stages, list):
        return []
    return [st for st in stages if isinstance(st, dict) and isinstance(st.get("seconds"), (int, float))]


def _stage_list(stages: list[dict[str, Any]]) -> str:
    return "; ".join(f"`{st.get('run')}` {_duration(float(st['seconds']))} ({float(st['seconds']):.0f} s)"
                     + (f", {st['epochs']} epochs" if st.get("epochs") is not None else "") for st in stages)


def training_section(training: dict[str, Any]) -> list[str]:
    if not training:
        return ["The model file records no training command or time.", ""]
    lines = []
    if "command" in training:
        lines += ["Training command:", "", "```bash", str(training["command"]), "```", ""]
    seconds = training.get("seconds", training.get("train_seconds"))
    if isinstance(seconds, (int, float)):
        where = training.get("machine") or training.get("cpu") or "the training machine"
        lines += [f"Training took {_duration(float(seconds))} ({float(seconds):.0f} s) on {where}."
                  + (f" {training['epochs']} epochs." if "epochs" in training else ""), ""]
        metrics = training.get("metrics") if isinstance(training.get("metrics"), dict) else {}
        hours, step = metrics.get("val_train_hours"), metrics.get("val_step")
        if "checkpoint" in training and isinstance(hours, (int, float)) and isinstance(step, (int, float)):
            lines[-2:-1] = [f"The exported checkpoint (`{training['checkpoint']}`) is the one of step {int(step):,}, after "
                            f"{_duration(3600 * float(hours))} of training; the run had trained {_duration(float(seconds))} "
                            f"({float(seconds):.0f} s) on {where} when it was exported"
                            + (f", {training['epochs']} epochs." if "epochs" in training else ".")]
    stages, teachers = _earlier_stages(training), _earlier_stages(training, "teacher_stages")
    sentences = []
    if stages:
        sentences.append(f"It is the last of {len(stages) + 1} training stages, each started from the weights of the one before "
                         f"(`{stages[-1].get('weights')}` of `{stages[-1].get('run')}` for this one): " + _stage_list(stages))
    if teachers:
        teacher = training.get("hyperparameters", {}).get("teacher") or f"{teachers[-1].get('run')}/{teachers[-1].get('weights')}"
        named = [teacher] if isinstance(teacher, str) else [str(t) for t in teacher]
        whom = (f"a frozen teacher network (`{named[0]}`" if len(named) == 1 else
                "the mean of frozen teacher networks (" + ", ".join(f"`{t}`" for t in named))
        sentences.append(f"Its last stage followed {whom}, `training.distill`), whose "
                         f"training stages{' not counted above' if stages else ''} took: " + _stage_list(teachers))
    if sentences:
        if isinstance(seconds, (int, float)):
            total = sum(float(st["seconds"]) for st in stages + teachers) + float(seconds)
            sentences[-1] += f"; all stages together trained {_duration(total)}"
        lines += [". ".join(sentences) + ".", ""]
    rest = {k: v for k, v in training.items() if k not in ("command",)}
    if rest:
        lines += ["Recorded with the model:", ""] + _bullets(rest) + [""]
    return lines


def reproduction_section(training: dict[str, Any], report: dict[str, Any]) -> list[str]:
    """What reproducing the model costs, from the times each step recorded."""
    earlier = _earlier_stages(training)
    stages = [
        ("dataset build", training.get("dataset_build_seconds")),
        *[(f"training stage {i + 1} (`{st.get('run')}`)", st["seconds"]) for i, st in enumerate(earlier)],
        *[(f"teacher stage {i + 1} (`{st.get('run')}`)", st["seconds"]) for i, st in enumerate(_earlier_stages(training, "teacher_stages"))],
        ("training" if not earlier else f"training stage {len(earlier) + 1}", training.get("seconds", training.get("train_seconds"))),
        ("ONNX export and parity check", training.get("export_seconds")),
        ("evaluation with the peers (scoring loop)", report.get("elapsed_seconds")),
    ]
    known = [(name, float(sec)) for name, sec in stages if isinstance(sec, (int, float))]
    if not known:
        return []
    parts = ", ".join(f"{name} {_duration(sec)}" for name, sec in known)
    missing = [name for name, sec in stages if not isinstance(sec, (int, float))]
    total = sum(sec for _, sec in known)
    text = (f"Reproducing it from the data with `make reproduce` took {_duration(total)} of recorded step time: {parts}"
            + (f" ({', '.join(missing)}: not recorded)." if missing else ".")
            + " Each step resumes or can be rerun on its own.")
    planned = (training.get("hyperparameters") or {}).get("epochs")
    done = training.get("epochs")
    if isinstance(planned, int) and isinstance(done, int) and done < planned:
        text += (f" The run was exported after {done} of its {planned} epochs, so a reproduction that trains it to"
                 " the end takes longer.")
    return [text, ""]


#: what the network estimates, by ``SignalSpec.output``
ESTIMATES = {
    "mask": "a mask on the noisy magnitude spectrogram and reuses the noisy phase",
    "magnitude": "the clean magnitude spectrogram and reuses the noisy phase",
    "complex_mask": "a complex mask on the noisy spectrogram, which corrects the phase as well as the magnitude",
}


def output_description(output: str, signal: dict[str, Any] | None = None) -> tuple[str, list[str]]:
    """The card's sentence on what the network estimates (with the deep filter of the lowest
    bins, where the contract has one), and the limits that follow from it."""
    sentence = f"It estimates {ESTIMATES[output]}."
    df_bins = int((signal or {}).get("df_bins") or 0)
    if output == "complex_mask" and df_bins:
        order, ahead = int(signal["df_order"]), int(signal["df_lookahead"])
        sentence += (f" Below bin {df_bins} it estimates a deep filter instead: {order} complex taps per bin over the noisy "
                     f"frames from {order - 1 - ahead} before to {ahead} after each output frame.")
    limits = [] if output == "complex_mask" else ["- The noisy phase is reused, which limits quality at very low SNR (below −5 dB)."]
    return sentence, limits


def usage(model: dict[str, Any]) -> str:
    """How the model is run: live streams with their delay, or whole recordings."""
    stream = model.get("streaming")
    if stream:
        return (f"live, frame by frame with its state carried (`WS /stream`), {stream['algorithmic_latency_ms']:g} ms "
                "of algorithmic latency; the figures here are of whole recordings streamed in 20-ms blocks.")
    return "offline or request/response (not low-latency streaming)."


def weights_description(quantization: dict[str, Any] | None) -> str:
    """One line on the file's arithmetic: float, or where and how it was quantised (``training.quantize``)."""
    if not quantization:
        return "float32"
    floats = quantization["float_nodes"]
    quantised = quantization.get("quantised_nodes", len(quantization["node_drops"]) - len(floats))
    line = (f"{quantization.get('kind', 'int8')} at {quantised} of {quantised + len(floats)} "
            f"{'/'.join(quantization.get('operators', []))} nodes ({quantization.get('quantised_macs_share', 0):.0%} "
            "of their multiply-adds; the rest float32), ")
    if quantization.get("selection") == "named":
        return line + (f"named (`--nodes`); mean drops of the whole file on {quantization.get('screen_mixtures')} "
                       "validation mixtures: " + ", ".join(f"{f} {d:g}" for f, d in quantization["drops"].items()))
    return line + (f"chosen on {quantization.get('screen_mixtures')} validation mixtures within mean drops of "
                   + ", ".join(f"{figure} {limit:g}" for figure, limit in quantization["tolerances"].items()))


def render_card(report: dict[str, Any], figure_name: str | None) -> str:
    model, data, env = report["model"], report["data"], report["environment"]
    signal = model["signal"]
    estimates, output_limits = output_description(signal.get("output", "mask"), signal)
    info = report["systems"]
    peers = [info[s]["label"] for s in report["order"] if info[s]["kind"] == "peer"]
    lines = [
        f"# Model card: {model['name']} {model['version']}",
        "",
        f"<!-- Generated by `{report['command']}` from its report.json and the model file's metadata, "
        f"{env['date']}. Do not edit by hand: rerun the command. -->",
        "",
        f"A speech denoiser for recordings of one person speaking in rain or a thunderstorm. {estimates}",
        "",
        "## Model",
        "",
        "| field | value |",
        "|---|---|",
        f"| file | `{Path(model['path']).name}` ({model['size_bytes'] / 1e6:.2f} MB) |",
        f"| name / version | {model['name']} / {model['version']} |",
        f"| preset | {model['preset']} |",
        f"| sha256 (file as evaluated) | `{model['sha256']}` |",
    ]
    if model.get("sha256_after_metadata"):
        lines.append(f"| sha256 (file with these figures written in) | `{model['sha256_after_metadata']}` |")
    lines += [
        f"| sha256 (content without evaluation metadata) | `{model['content_sha256']}` |",
        f"| training commit | `{model.get('training_commit', 'unknown')}` |",
        f"| signal | {signal.get('sample_rate')} Hz, STFT n_fft {signal.get('n_fft')}, hop {signal.get('hop_length')}, "
        f"{signal.get('window')} window, {signal.get('magnitude')} magnitude, output {signal.get('output')}, "
        f"frame multiple {signal.get('frame_multiple')} |",
        f"| weights | {weights_description((model.get('training') or {}).get('quantization'))} |",
        "",
        "## Training data",
        "",
        "As recorded in the model file (`data_summary`):",
        "",
        *(_bullets(model["data_summary"]) if model["data_summary"] else ["- (not recorded)"]),
        "",
    ]
    if data.get("dataset_summary"):
        lines += [f"Dataset evaluated here (`{data['path']}`, from its stats.json summary):", "",
                  *_bullets(data["dataset_summary"]), ""]
    lines += [
        "Speech: LibriSpeech (Panayotov et al., 2015; OpenSLR SLR12), female speakers only, split by speaker. "
        "Noise: ESC-50 (Piczak, 2015) rain and thunderstorm clips, split by source recording.",
        "",
        "## Licences",
        "",
        "- LibriSpeech is CC BY 4.0 (attribution).",
        "- ESC-50 is CC BY-NC 3.0: non-commercial use only. These weights were trained on that non-commercial-licensed "
        "noise, so commercial use of the weights is not cleared: treat them as non-commercial unless they are retrained on "
        "noise whose licence allows commercial use.",
        "- The code is MIT.",
        "",
        "## Training",
        "",
        *training_section(model["training"]),
        *reproduction_section(model["training"] or {}, report),
        "## Evaluation",
        "",
        f"On `{data['path']}`, split `{data['split']}`: {data['mixtures_evaluated']} mixtures "
        f"({data['seconds_evaluated'] / 60:.1f} min of speech"
        f"{'; the test split, whose speakers and noise recordings are not in the training split' if data.get('kind') == 'dataset' else ''}), "
        f"16 kHz, scored on each mixture cropped to its speech. The model runs through the service's code path; "
        f"the peers ({', '.join(peers) if peers else 'none'}) run in the same run on the same mixtures, with their fixed "
        f"delays measured and undone. Timings: {env['cpu_model']}, {env['cpu_count']} CPUs.",
        "",
        *R.overall_table(report),
        "",
        R.dnsmos_note(report),
        "",
        "Margins of the model (positive = the model is better):",
        "",
        *R.margins_table(report),
        "",
        R.wins_sentence(report),
        "",
    ]
    for group, title in (("by_category", "noise category"), ("by_snr", "SNR")):
        lines += [f"### Per {title}", ""]
        lines += R.group_tables(report, group, title, metrics=("si_sdr", "pesq", "stoi", "dnsmos_ovrl"))
    if figure_name:
        lines += ["### Spectrograms", "", f"![noisy / denoised / clean]({figure_name})", "",
                  f"Mixture `{report.get('figure_mixture')}`: noisy input, this model's output, clean speech (dB).", ""]
    lines += [
        f"Full report (per mixture, environment, peers' settings and delays): `{report.get('out', '.')}/report.md` and "
        "`report.json`, written by the command above.",
        "",
        "## Intended use and limits",
        "",
        "- Intended for: read English speech by female speakers, recorded with rain or thunderstorm noise, "
        "one speaker at a time, " + usage(model),
        f"- Processing is at {signal.get('sample_rate', 16000)} Hz: input at other rates is resampled, and content above "
        f"{signal.get('sample_rate', 16000) // 2000} kHz is not restored (a 44.1/48 kHz file comes back band-limited).",
        "- Not evaluated on male or child voices, other languages, spontaneous or far-field speech, music, or other noise "
        "types (traffic, babble, wind); expect weaker results there.",
        *output_limits,
        "- Evaluation sets are small (see n above): differences of a few hundredths in PESQ or STOI are within noise.",
        "- Commercial use of the weights is not cleared (ESC-50 noise is CC BY-NC 3.0).",
        "",
    ]
    return "\n".join(lines)


def write_card(report: dict[str, Any], report_dir: Path, card_path: Path) -> Path:
    """Write the card and copy the spectrogram next to it as ``<model name>_spectrogram.png``."""
    card_path = Path(card_path)
    card_path.parent.mkdir(parents=True, exist_ok=True)
    figure_name = None
    if report.get("figure") and (Path(report_dir) / report["figure"]).exists():
        figure_name = f"{report['model']['name']}_spectrogram.png"
        shutil.copyfile(Path(report_dir) / report["figure"], card_path.parent / figure_name)
    card_path.write_text(render_card(report, figure_name))
    return card_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluation.card", description="Write the model card from a report.json")
    p.add_argument("--report", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    report = json.loads(args.report.read_text())
    write_card(report, args.report.parent, args.out)
    print(f"model card: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
