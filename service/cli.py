"""Denoise files offline through the service's code path.

    python -m service.cli noisy1.wav noisy2.flac -o clean/ [--format flac] [--model PATH]
    rainclean-denoise recordings/*.wav -o clean/

Each input is checked, decoded, denoised and encoded exactly as ``POST /denoise``
does it (:func:`service.inference.denoise_bytes`), with the same limits and chunking
(environment variables, see :mod:`service.settings`). Outputs are written to the
output directory as ``<input stem>.<format>``. Exit status 1 if any file failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from denoise_core.model_file import OnnxModel
from service.errors import ServiceError
from service.inference import denoise_bytes
from service.settings import Settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rainclean-denoise", description="Denoise speech recordings offline.")
    p.add_argument("inputs", nargs="+", type=Path, help="audio files (WAV, FLAC, OGG, ...)")
    p.add_argument("-o", "--output-dir", type=Path, required=True, help="directory for the denoised files")
    p.add_argument("--format", choices=("wav", "flac"), default="wav", help="output container (default wav)")
    p.add_argument("--model", type=Path, default=None, help="ONNX model (default: MODEL_PATH or the shipped model)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings()
    if args.model is not None:
        settings = settings.model_copy(update={"model_path": args.model})
    try:
        model = OnnxModel(settings.model_path, settings.intra_op_threads, settings.ort_inter_op_threads)
    except Exception as exc:
        print(f"error: cannot load model {settings.model_path}: {exc}", file=sys.stderr)
        return 2
    args.output_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    used: set[Path] = set()
    bar = tqdm(args.inputs, unit="file", desc="denoising", file=sys.stderr)
    for src in bar:
        bar.set_postfix_str(src.name)
        dest = args.output_dir / f"{src.stem}.{args.format}"
        n = 1
        while dest in used:  # two inputs with the same stem
            dest = args.output_dir / f"{src.stem}-{n}.{args.format}"
            n += 1
        used.add(dest)
        if dest.exists() and not args.overwrite:
            tqdm.write(f"skip {src}: {dest} exists (use --overwrite)", file=sys.stderr)
            failures += 1
            continue
        try:
            result = denoise_bytes(model, src.read_bytes(), settings, args.format)
        except (ServiceError, OSError) as exc:
            message = exc.message if isinstance(exc, ServiceError) else str(exc)
            tqdm.write(f"failed {src}: {message}", file=sys.stderr)
            failures += 1
            continue
        dest.write_bytes(result.payload)
    bar.close()
    done = len(args.inputs) - failures
    print(f"denoised {done}/{len(args.inputs)} file(s) into {args.output_dir}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
