"""Model-card pieces that are computed rather than copied."""

from __future__ import annotations

import pytest

from training.evaluation.card import output_description, reproduction_section, weights_description


def test_reproduction_time_adds_up_the_recorded_steps() -> None:
    training = {"dataset_build_seconds": 60.0, "seconds": 4320.0, "export_seconds": 30.0}
    (line, blank) = reproduction_section(training, {"elapsed_seconds": 810.0})
    assert blank == ""
    assert "took 87.0 min" in line  # (60 + 4320 + 30 + 810) / 60
    for part in ("dataset build 1.0 min", "training 72.0 min", "export and parity check 0.5 min", "(scoring loop) 13.5 min"):
        assert part in line
    assert "not recorded" not in line


def test_reproduction_time_of_a_run_exported_before_its_end() -> None:
    (line, _) = reproduction_section({"seconds": 600.0, "epochs": 10, "hyperparameters": {"epochs": 140}}, {})
    assert "exported after 10 of its 140 epochs" in line
    (line, _) = reproduction_section({"seconds": 600.0, "epochs": 140, "hyperparameters": {"epochs": 140}}, {})
    assert "exported after" not in line


def test_reproduction_time_names_what_was_not_recorded() -> None:
    (line, _) = reproduction_section({"seconds": 600.0}, {})
    assert "took 10.0 min" in line and "not recorded" in line and "dataset build" in line.split("not recorded")[0]
    assert reproduction_section({}, {}) == []


@pytest.mark.parametrize("output, phase_reused", [("mask", True), ("magnitude", True), ("complex_mask", False)])
def test_card_says_whether_the_noisy_phase_is_reused(output: str, phase_reused: bool) -> None:
    sentence, limits = output_description(output)
    assert ("reuses the noisy phase" in sentence) == phase_reused
    assert any("noisy phase is reused" in line for line in limits) == phase_reused
    assert ("complex mask" in sentence) == (output == "complex_mask")


def test_card_states_how_the_model_is_run() -> None:
    from training.evaluation.card import usage

    assert "not low-latency streaming" in usage({"name": "m"})
    live = usage({"streaming": {"algorithmic_latency_ms": 64.0}})
    assert "WS /stream" in live and "64 ms" in live


def test_card_gives_a_checkpoints_own_training_time() -> None:
    from training.evaluation.card import training_section

    plain = "\n".join(training_section({"command": "python -m training.train", "seconds": 21845.0, "epochs": 103}))
    assert "Training took 6.07 h (21845 s) on the training machine. 103 epochs." in plain
    kept = "\n".join(training_section({"seconds": 21845.0, "epochs": 103, "checkpoint": "best-quality.weights.h5",
                                       "metrics": {"val_step": 50000.0, "val_train_hours": 5.747}}))
    assert "Training took" not in kept
    assert ("The exported checkpoint (`best-quality.weights.h5`) is the one of step 50,000, after 5.75 h of training; "
            "the run had trained 6.07 h (21845 s) on the training machine when it was exported, 103 epochs.") in kept


def test_card_counts_every_training_stage_of_a_warm_started_model() -> None:
    from training.evaluation.card import training_section

    earlier = [{"run": "band-offline-df", "weights": "best-quality.weights.h5", "seconds": 35643.0, "epochs": 140},
               {"run": "ab-ft-df-pesq", "weights": "best-quality.weights.h5", "seconds": 3330.0, "epochs": 12}]
    training = {"seconds": 3006.0, "epochs": 16, "dataset_build_seconds": 18.0, "earlier_stages": earlier}
    (line, _) = reproduction_section(training, {"elapsed_seconds": 1356.0})
    assert ("training stage 1 (`band-offline-df`) 9.90 h, training stage 2 (`ab-ft-df-pesq`) 55.5 min, "
            "training stage 3 50.1 min") in line
    assert "took 12.04 h" in line  # (18 + 35643 + 3330 + 3006 + 1356) / 3600
    text = "\n".join(training_section(training))
    assert ("It is the last of 3 training stages, each started from the weights of the one before (`best-quality.weights.h5` "
            "of `ab-ft-df-pesq` for this one): `band-offline-df` 9.90 h (35643 s), 140 epochs; `ab-ft-df-pesq` 55.5 min "
            "(3330 s), 12 epochs; all stages together trained 11.66 h.") in text
    (single, _) = reproduction_section({**training, "earlier_stages": earlier[:1]}, {})
    assert "training stage 1 (`band-offline-df`) 9.90 h, training stage 2 50.1 min" in single
    assert "stage" not in reproduction_section({"seconds": 3006.0}, {})[0]


def test_card_names_the_deep_filter_of_the_lowest_bins() -> None:
    signal = {"output": "complex_mask", "df_bins": 65, "df_order": 5, "df_lookahead": 2}
    sentence, _ = output_description("complex_mask", signal)
    assert sentence.endswith("Below bin 65 it estimates a deep filter instead: 5 complex taps per bin over the noisy "
                             "frames from 2 before to 2 after each output frame.")
    assert "deep filter" not in output_description("complex_mask", {**signal, "df_bins": 0})[0]
    assert "deep filter" not in output_description("complex_mask")[0]


def test_card_counts_the_training_of_a_teacher_the_model_followed() -> None:
    from training.evaluation.card import training_section

    earlier = [{"run": "band-offline-df", "weights": "best-quality.weights.h5", "seconds": 35643.0, "epochs": 140},
               {"run": "ab-ws-sep-pesq", "weights": "best-quality.weights.h5", "seconds": 3006.0, "epochs": 16}]
    teachers = [{"run": "ab-ft-df-crop4", "weights": "best-quality.weights.h5", "seconds": 2880.0, "epochs": 6}]
    training = {"seconds": 3000.0, "epochs": 6, "earlier_stages": earlier, "teacher_stages": teachers,
                "hyperparameters": {"teacher": "../runs/ab-ft-df-crop4/best-quality.weights.h5"}}
    text = "\n".join(training_section(training))
    assert ("Its last stage followed a frozen teacher network (`../runs/ab-ft-df-crop4/best-quality.weights.h5`, "
            "`training.distill`), whose training stages not counted above took: `ab-ft-df-crop4` 48.0 min (2880 s), 6 epochs; "
            "all stages together trained 12.37 h.") in text  # (35643 + 3006 + 2880 + 3000) / 3600
    assert "It is the last of 3 training stages" in text and "50.1 min (3006 s), 16 epochs. Its last stage" in text
    (line, _) = reproduction_section(training, {})
    assert "training stage 2 (`ab-ws-sep-pesq`) 50.1 min, teacher stage 1 (`ab-ft-df-crop4`) 48.0 min, training stage 3 50.0 min" in line


def test_card_names_every_network_of_a_mean_teacher() -> None:
    from training.evaluation.card import training_section

    teachers = [{"run": "ab-ft-df-crop4", "weights": "best-quality.weights.h5", "seconds": 2880.0, "epochs": 6},
                {"run": "band-offline-df-pesq", "weights": "best-quality.weights.h5", "seconds": 50712.0, "epochs": 140}]
    training = {"seconds": 3000.0, "epochs": 6, "teacher_stages": teachers,
                "hyperparameters": {"teacher": ["a/best-quality.weights.h5", "b/best-quality.weights.h5"]}}
    text = "\n".join(training_section(training))
    assert ("Its last stage followed the mean of frozen teacher networks (`a/best-quality.weights.h5`, "
            "`b/best-quality.weights.h5`, `training.distill`), whose training stages took: `ab-ft-df-crop4` 48.0 min") in text


def test_card_says_where_the_weights_are_int8() -> None:
    assert weights_description(None) == "float32"
    record = {"kind": "int8 static QDQ", "operators": ["Conv", "MatMul"], "screen_mixtures": 40,
              "tolerances": {"si_sdr": 0.01, "dnsmos_ovrl": 0.002}, "node_drops": {"a": {}, "b": {}, "c": {}},
              "float_nodes": ["b"], "quantised_macs_share": 0.402}
    line = weights_description(record)
    assert line.startswith("int8 static QDQ at 2 of 3 Conv/MatMul nodes (40% of their multiply-adds")
    assert "40 validation mixtures" in line and "si_sdr 0.01, dnsmos_ovrl 0.002" in line


def test_card_says_which_nodes_were_named_for_int8() -> None:
    record = {"kind": "int8 static QDQ", "operators": ["Conv", "MatMul"], "screen_mixtures": 40, "selection": "named",
              "tolerances": {"si_sdr": 0.05}, "node_drops": {}, "quantised_nodes": 3, "float_nodes": ["b"],
              "drops": {"si_sdr": 0.02}, "quantised_macs_share": 0.75}
    line = weights_description(record)
    assert line.startswith("int8 static QDQ at 3 of 4 Conv/MatMul nodes (75% of their multiply-adds")
    assert "named (`--nodes`)" in line and "40 validation mixtures: si_sdr 0.02" in line
