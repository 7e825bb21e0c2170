"""Where the report says a peer beats the model: only where it is ahead as printed."""

from __future__ import annotations

from typing import Any

import pytest

from training.evaluation.report import aggregate, shown_ahead, wins_sentence

FIGURES = ("si_sdr", "pesq", "stoi", "dnsmos_ovrl")


def _records(model: dict[str, float], peer: dict[str, float]) -> list[dict[str, Any]]:
    """Two mixtures (rain at 0 dB, thunderstorm at 5 dB) scored alike for each system."""
    noisy = {m: 0.0 for m in FIGURES}
    return [{"category": c, "snr": s, "scores": {"model": model, "peer": peer, "noisy": noisy}}
            for c, s in (("rain", "0 dB"), ("thunderstorm", "5 dB"))]


@pytest.mark.parametrize("metric, value, than, ahead", [
    ("si_sdr", 12.8944, 12.8936, False),  # both print 12.89
    ("si_sdr", 12.90, 12.89, True),
    ("stoi", 0.8761, 0.8759, False),  # both print 0.876
    ("stoi", 0.877, 0.876, True),
    ("seed_mse", 0.0051, 0.0052, True),  # lower is better
    ("seed_mse", 0.0052, 0.0051, False),
    ("pesq", None, 2.0, False),
])
def test_a_lead_is_one_the_printed_figures_show(metric: str, value: float | None, than: float, ahead: bool) -> None:
    assert shown_ahead(metric, value, than) is ahead


def test_a_peer_level_with_the_model_as_printed_does_not_beat_it() -> None:
    model = {"si_sdr": 12.8936, "pesq": 2.2204, "stoi": 0.8760, "dnsmos_ovrl": 2.9204}
    level = {"si_sdr": 12.8944, "pesq": 2.2212, "stoi": 0.8762, "dnsmos_ovrl": 2.9211}
    result = aggregate(_records(model, level), ["noisy", "model", "peer"])
    assert result["peer_wins"] == []
    report = {"results": result, "order": ["noisy", "model", "peer"],
              "systems": {"noisy": {"kind": "input", "label": "noisy"}, "model": {"kind": "model", "label": "m"},
                          "peer": {"kind": "peer", "label": "p"}}}
    assert wins_sentence(report).startswith("No peer beats the model")


def test_a_peer_ahead_as_printed_beats_the_model_everywhere_it_is() -> None:
    model = {"si_sdr": 12.89, "pesq": 2.22, "stoi": 0.876, "dnsmos_ovrl": 2.92}
    ahead = {**model, "dnsmos_ovrl": 2.96}
    wins = aggregate(_records(model, ahead), ["noisy", "model", "peer"])["peer_wins"]
    assert {w["metric"] for w in wins} == {"dnsmos_ovrl"}
    assert {(w["group"], w["value"]) for w in wins} == {("overall", "all"), ("category", "rain"), ("category", "thunderstorm"),
                                                       ("snr", "0 dB"), ("snr", "5 dB")}
