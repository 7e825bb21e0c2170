"""Denoise files and folder trees offline through the service's code path.

    python -m service.cli noisy1.wav noisy2.flac -o clean/ [--format flac] [--model PATH]
    python -m service.cli recordings/ -o clean/ [--jobs 2] [--overwrite] [--attenuation-limit-db 12]
    rainclean-denoise recordings/*.wav -o clean/

Each input is checked, decoded, denoised and encoded exactly as ``POST /denoise``
does it (:func:`service.inference.denoise_bytes`), with the same limits and chunking
(environment variables, see :mod:`service.settings`). A file named directly is written
as ``<output dir>/<stem>.<format>`` (WAV unless ``--format``). A folder is walked
recursively and its tree mirrored under the output directory, each file keeping its
format (WAV, FLAC, OGG, MP3, AIFF, ...) unless ``--format``. Existing outputs are
skipped unless ``--overwrite``. Ends with a summary; exit status 1 if any file failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from denoise_core.model_file import OnnxModel
from service import batch_dir
from service.settings import Settings


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rainclean-denoise", description="Denoise speech recordings offline.")
    p.add_argument("inputs", nargs="+", type=Path, help="audio files (WAV, FLAC, OGG, MP3, ...) or folders")
    p.add_argument("-o", "--output-dir", type=Path, required=True, help="directory for the denoised files")
    p.add_argument("--format", choices=("wav", "flac"), default=None,
                   help="output container (default: wav for files named directly; a folder's files keep theirs)")
    p.add_argument("--model", type=Path, default=None, help="ONNX model (default: MODEL_PATH or the shipped model)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (default: skip them)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes, each loading the model once")
    p.add_argument("--attenuation-limit-db", type=_non_negative, default=None, metavar="DB",
                   help="attenuate the noise by at most DB dB, keeping some background (0: input unchanged; "
                        "default: no limit)")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    return args


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
    jobs = batch_dir.plan(args.inputs, args.output_dir, args.format)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    summary = batch_dir.run(jobs, model, settings, jobs=args.jobs, overwrite=args.overwrite,
                            attenuation_limit_db=args.attenuation_limit_db)
    print(batch_dir.report(summary, args.output_dir), file=sys.stderr)
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
