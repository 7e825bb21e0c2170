"""CLI: ``python -m training.data {download,build} ...`` (exit code 2 on bad input)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from training.data.errors import DatasetError


def _md5_pair(value: str) -> tuple[str, str]:
    subset, sep, digest = value.partition("=")
    if not sep or len(digest) != 32:
        raise argparse.ArgumentTypeError("expected SUBSET=32-hex-digit MD5")
    return subset, digest


def parser() -> argparse.ArgumentParser:
    from training.data.download import (DEFAULT_SUBSETS, ESC50_CLIPS, ESC50_ROWS, ESC50_URL,
                                        LIBRISPEECH_MIRROR)

    p = argparse.ArgumentParser(prog="python -m training.data", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("download", help="fetch, verify and extract LibriSpeech subsets and ESC-50")
    d.add_argument("--subsets", nargs="+", default=list(DEFAULT_SUBSETS), metavar="SUBSET")
    d.add_argument("--dest", type=Path, default=Path("downloads"), help="where archives and corpora go")
    d.add_argument("--librispeech-mirror", default=LIBRISPEECH_MIRROR, metavar="URL")
    d.add_argument("--esc50-url", default=ESC50_URL, metavar="URL")
    d.add_argument("--no-esc50", action="store_true", help="skip ESC-50")
    d.add_argument("--md5", type=_md5_pair, action="append", default=[], metavar="SUBSET=MD5",
                   help="override the expected MD5 of a subset archive")
    d.add_argument("--esc50-clips", type=int, default=ESC50_CLIPS, help="expected clips in audio/")
    d.add_argument("--esc50-rows", type=int, default=ESC50_ROWS, help="expected rows in meta/esc50.csv")
    d.add_argument("--retries", type=int, default=2, help="resume attempts per archive within one run")
    d.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")

    b = sub.add_parser("build", help="build the split, mixed training set")
    b.add_argument("--librispeech", type=Path, required=True, metavar="DIR", help="LibriSpeech root (SPEAKERS.TXT)")
    b.add_argument("--esc50", type=Path, required=True, metavar="DIR", help="ESC-50 root (meta/, audio/)")
    b.add_argument("--out", type=Path, required=True, metavar="DIR")
    b.add_argument("--segment", action="store_true", help="also cut 3-5 s segments out of longer utterances")
    b.add_argument("--mix", choices=["reference", "snr"], default="reference",
                   help="reference: padded speech + noise/2; snr: noise scaled to a drawn SNR")
    b.add_argument("--snr-range", nargs=2, type=float, default=[-5.0, 10.0], metavar=("LOW", "HIGH"))
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--min-seconds", type=float, default=3.0)
    b.add_argument("--max-seconds", type=float, default=5.0)
    b.add_argument("--max-utterances", type=int, default=None, metavar="N",
                   help="use at most N (seeded random) utterances, for quick builds")
    b.add_argument("--workers", type=int, default=2, help="decoding threads")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.add_argument("--extra-noise", type=Path, nargs="+", default=[], metavar="DIR",
                   help="folders of extra noise recordings (<category>/<file>), for the training split's noise only")
    return p


def _download(args: argparse.Namespace) -> None:
    from training.data.download import download_all

    roots = download_all(
        args.dest, args.subsets, args.librispeech_mirror, args.esc50_url, dict(args.md5),
        args.esc50_clips, args.esc50_rows, esc50=not args.no_esc50, retries=args.retries, timeout=args.timeout,
    )
    print("downloaded and verified:", ", ".join(f"{k}={v}" for k, v in roots.items()))
    if "librispeech" in roots and "esc50" in roots:
        print(f"next: python -m training.data build --librispeech {roots['librispeech']} "
              f"--esc50 {roots['esc50']} --out build/dataset --segment")


def _build(args: argparse.Namespace) -> None:
    from training.data.build import BuildConfig, build, format_summary

    cfg = BuildConfig(
        librispeech=args.librispeech, esc50=args.esc50, out=args.out, segment=args.segment, mix_mode=args.mix,
        snr_range=(args.snr_range[0], args.snr_range[1]), seed=args.seed, min_seconds=args.min_seconds,
        max_seconds=args.max_seconds, max_utterances=args.max_utterances, workers=args.workers,
        progress=not args.quiet, extra_noise=tuple(args.extra_noise),
    )
    stats = build(cfg)
    print(f"dataset written to {args.out}")
    print(format_summary(stats))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        (_download if args.command == "download" else _build)(args)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
