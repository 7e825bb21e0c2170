"""What chunking costs a long input: files longer than a chunk, enhanced in one pass and in
overlapping chunks.

``python -m training.evaluation.chunking --data DIR --model FILE [--split val] [--seconds 60]
[--chunk 10] --overlaps 1 0.5 0.25``

Consecutive mixtures of a split are joined into files of about ``--seconds`` each (speech and
noisy audio joined at the same points). Each file is enhanced through the model's signal
contract in one pass, then in chunks of ``--chunk`` seconds with each overlap. Per overlap it
prints the audio the network processes per audio second, the mean SI-SDR and PESQ-WB against
the clean speech, their mean and worst per-file change against the first overlap, and how far
the chunked output is from the one-pass output (its SNR against it, mean and worst).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from denoise_core.model_file import OnnxModel
from denoise_core.signal import ChunkPlan
from training.datasets import Dataset, SplitArrays
from training.evaluation.metrics import pesq_wb, si_sdr


@dataclass(frozen=True)
class LongFile:
    noisy: np.ndarray
    clean: np.ndarray


def join_mixtures(arrays: SplitArrays, seconds: float, sample_rate: int, files: int | None = None) -> list[LongFile]:
    """Consecutive mixtures joined into files of at least ``seconds`` (the remainder, shorter,
    is dropped); at most ``files`` of them."""
    out: list[LongFile] = []
    noisy: list[np.ndarray] = []
    clean: list[np.ndarray] = []
    target = int(round(seconds * sample_rate))
    for n, c, length in zip(arrays.noisy, arrays.clean, arrays.lengths):
        noisy.append(n[:length])
        clean.append(c[:length])
        if sum(len(x) for x in noisy) >= target:
            out.append(LongFile(np.concatenate(noisy).astype(np.float32), np.concatenate(clean).astype(np.float32)))
            noisy, clean = [], []
            if files is not None and len(out) == files:
                break
    return out


def processed_per_second(n_samples: int, chunk_seconds: float, overlap_seconds: float, sample_rate: int, hop: int) -> float:
    """Samples the network processes per input sample with this chunking (as ``enhance_long`` plans it)."""
    spans = ChunkPlan.for_seconds(chunk_seconds, overlap_seconds, sample_rate, hop).spans(n_samples)
    return sum(end - start for start, end in spans) / n_samples


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """``estimate`` against ``reference``: 10 log10 of their energy over the difference's."""
    error = np.sum((reference.astype(np.float64) - estimate) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / error))


def compare_overlaps(model: OnnxModel, files: list[LongFile], chunk: float, overlaps: list[float]) -> list[dict[str, float | str]]:
    """One row per chunking (one pass first, then each overlap), with the figures the module prints."""
    sr, hop = model.spec.sample_rate, model.spec.hop_length
    one_pass = [model.denoise(f.noisy, sr, chunk_seconds=len(f.noisy) / sr + 1.0)[:, 0] for f in files]
    scored: list[tuple[str, list[np.ndarray], float]] = [("one pass", one_pass, 1.0)]
    for overlap in overlaps:
        outs = [model.denoise(f.noisy, sr, chunk_seconds=chunk, overlap_seconds=overlap)[:, 0] for f in files]
        load = float(np.mean([processed_per_second(len(f.noisy), chunk, overlap, sr, hop) for f in files]))
        scored.append((f"{overlap:g} s", outs, load))
    rows: list[dict[str, float | str]] = []
    first: tuple[np.ndarray, np.ndarray] | None = None
    for label, outs, load in scored:
        sdr = np.array([si_sdr(f.clean, o) for f, o in zip(files, outs)])
        pesq = np.array([pesq_wb(f.clean, o, sr) for f, o in zip(files, outs)])
        near = np.array([snr_db(p, o) for p, o in zip(one_pass, outs)])
        row: dict[str, float | str] = {"chunking": label, "processed": load, "si_sdr": float(sdr.mean()), "pesq": float(np.nanmean(pesq)),
                                       "snr_one_pass": float(np.mean(near[np.isfinite(near)])) if np.isfinite(near).any() else float("inf"),
                                       "snr_one_pass_worst": float(near.min())}
        if label != "one pass":
            if first is None:
                first = (sdr, pesq)
            row.update({"d_si_sdr": float(np.mean(sdr - first[0])), "d_si_sdr_worst": float(np.min(sdr - first[0])),
                        "d_pesq": float(np.nanmean(pesq - first[1])), "d_pesq_worst": float(np.nanmin(pesq - first[1]))})
        rows.append(row)
    return rows


def format_rows(rows: list[dict[str, float | str]], first_overlap: str) -> str:
    head = (f"| chunking | audio processed per audio s | SI-SDR (dB) | PESQ-WB | Δ SI-SDR vs {first_overlap} mean / worst | "
            f"Δ PESQ-WB vs {first_overlap} mean / worst | SNR vs one pass (dB) mean / worst |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        d_sdr = f"{r['d_si_sdr']:+.3f} / {r['d_si_sdr_worst']:+.3f}" if "d_si_sdr" in r else "-"
        d_pesq = f"{r['d_pesq']:+.4f} / {r['d_pesq_worst']:+.4f}" if "d_pesq" in r else "-"
        near = "-" if r["chunking"] == "one pass" else f"{r['snr_one_pass']:.1f} / {r['snr_one_pass_worst']:.1f}"
        lines.append(f"| {r['chunking']} | {r['processed']:.3f} | {r['si_sdr']:.3f} | {r['pesq']:.4f} | {d_sdr} | {d_pesq} | {near} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluation.chunking", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="dataset directory")
    p.add_argument("--model", required=True, type=Path, help="ONNX model file")
    p.add_argument("--split", default="val", choices=("train", "val", "test"))
    p.add_argument("--seconds", type=float, default=60.0, help="length of each joined file")
    p.add_argument("--files", type=int, default=None, help="at most this many files (default: as many as the split fills)")
    p.add_argument("--chunk", type=float, default=10.0, help="chunk length in seconds")
    p.add_argument("--overlaps", type=float, nargs="+", required=True, help="overlaps in seconds; the first is the reference")
    args = p.parse_args(argv)
    if any(o < 0 or o >= args.chunk for o in args.overlaps):
        p.error("every overlap must lie in [0, --chunk)")
    if args.seconds <= args.chunk:
        p.error("--seconds must exceed --chunk, or nothing is chunked")
    try:
        arrays = Dataset.open(args.data).split(args.split)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = OnnxModel(args.model, intra_op_threads=1)
    files = join_mixtures(arrays, args.seconds, model.spec.sample_rate, args.files)
    if not files:
        print(f"error: the {args.split} split holds less than {args.seconds:g} s of audio", file=sys.stderr)
        return 2
    total = sum(len(f.noisy) for f in files) / model.spec.sample_rate
    print(f"{model.path}: {len(files)} files of the {args.split} split, {total:.0f} s in all, chunks of {args.chunk:g} s")
    print(format_rows(compare_overlaps(model, files, args.chunk, args.overlaps), f"{args.overlaps[0]:g} s"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
