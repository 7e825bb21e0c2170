"""What a mask could reach if it were known exactly: ``python -m training.evaluation.oracle --data build/dataset``.

For every mixture of a split, the ideal masks are computed from the clean and noisy
spectra at the band network's STFT and scored like a model's output (SI-SDR, PESQ-WB,
STOI, DNSMOS OVRL, means over the split):

- ``magnitude``: the ideal amplitude mask ``|S| / |X|`` capped at 1, on the noisy phase;
- ``complex``: the ideal complex mask ``S / X`` with its magnitude capped below 1, as the
  band network's bounded complex mask is;
- ``complex-bands``: the same mask after merging it to the band network's bands and
  spreading it back to bins (``band_matrices``), which is the resolution the network's
  output has.

The gap between ``complex`` and ``complex-bands`` is what the band layout costs at best;
the gap between ``complex-bands`` and a trained model is what the network leaves.
"""

from __future__ import annotations

import argparse
from typing import Callable

import numpy as np

from denoise_core.signal import SignalSpec, istft, stft
from training.datasets import Dataset
from training.evaluation.dnsmos import dnsmos
from training.evaluation.metrics import pesq_wb, si_sdr, stoi
from training.evaluation.ship_rule import TARGETS
from training.models.bandnet import band_matrices

#: the complex mask's magnitude bound (the network's is tanh, strictly below one)
MASK_BOUND = 0.999

Oracle = Callable[[np.ndarray, np.ndarray], np.ndarray]


def capped(mask: np.ndarray, bound: float) -> np.ndarray:
    """``mask`` with its magnitude limited to ``bound`` (phase kept)."""
    magnitude = np.abs(mask)
    return np.where(magnitude > bound, mask * bound / np.maximum(magnitude, 1e-12), mask)


def ideal_complex(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    return capped(clean / np.where(np.abs(noisy) > 1e-8, noisy, 1e-8), MASK_BOUND)


def oracles(spec: SignalSpec, linear_bins: int = 65, bands: int = 64) -> dict[str, Oracle]:
    """The ideal masks by name, each a function of the clean and noisy spectra ``(freq, frames)``."""
    merge, spread = band_matrices(spec.n_freq, linear_bins, bands, spec.sample_rate)
    through_bands = merge @ spread  # (freq, freq): merge to bands, spread back to bins

    def magnitude(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
        return np.minimum(np.abs(clean) / np.maximum(np.abs(noisy), 1e-8), 1.0)

    def complex_bands(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
        return capped(through_bands.T @ ideal_complex(clean, noisy), MASK_BOUND)

    return {"magnitude": magnitude, "complex": ideal_complex, "complex-bands": complex_bands}


def score(spec: SignalSpec, oracle: Oracle, clean_wave: np.ndarray, noisy_wave: np.ndarray) -> dict[str, float]:
    """The four figures of ``oracle``'s mask applied to one mixture."""
    clean, noisy = stft(clean_wave, spec), stft(noisy_wave, spec)
    estimate = istft(oracle(clean, noisy) * noisy, spec, len(noisy_wave))
    return {"si_sdr": si_sdr(clean_wave, estimate), "pesq": pesq_wb(clean_wave, estimate), "stoi": stoi(clean_wave, estimate),
            "dnsmos_ovrl": dnsmos(estimate)["dnsmos_ovrl"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluation.oracle", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="build/dataset", help="dataset directory from `python -m training.data build`")
    p.add_argument("--split", default="val")
    p.add_argument("--limit", type=int, default=None, help="score only the first N mixtures")
    args = p.parse_args(argv)
    arrays = Dataset.open(args.data).split(args.split)
    spec = SignalSpec(n_fft=512, hop_length=256, magnitude="compressed", compress_exponent=0.3, output="complex_mask")
    count = len(arrays.lengths) if args.limit is None else min(args.limit, len(arrays.lengths))
    print(f"ideal masks on {count} mixtures of the {args.split} split (n_fft {spec.n_fft}, hop {spec.hop_length})")
    print("| mask | " + " | ".join(TARGETS) + " |\n|" + "---|" * (len(TARGETS) + 1))
    for name, oracle in oracles(spec).items():
        rows = [score(spec, oracle, arrays.clean[i, : arrays.lengths[i]], arrays.noisy[i, : arrays.lengths[i]]) for i in range(count)]
        means = {k: float(np.nanmean([r[k] for r in rows])) for k in TARGETS}
        print(f"| {name} | " + " | ".join(f"{means[k]:.2f}" if k == "si_sdr" else f"{means[k]:.3f}" for k in TARGETS) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
