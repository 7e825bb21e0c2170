# Set-up and everyday commands. `make serve` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 0.0.0.0
PORT ?= 8000
DATA ?= ../shared/data
BUILD ?= build
# long runs live beside the work tree, so that a fresh checkout of the project resumes them
RUNS ?= ../runs
BAND_DATASET ?= $(BUILD)/dataset-extra-noise
# the streaming model's long run and preset (docs/model-gen2.md): two frames of lookahead
BAND_RUN ?= $(RUNS)/band-ctx
BAND_PRESET ?= band-ctx
# the shipped offline model (models/denoiser.onnx): its run and that run's preset; the run is the
# last of three stages (train-ship)
SHIP_RUN ?= $(RUNS)/ab-kd-ens-outctx-crop5
SHIP_PRESET ?= band-offline-df-pesq
# the smaller network that the arms fine-tune (the offline model until 2026-12-06): the seventh
# long run's preset, with full context blocks at the first encoder level
SEP_PRESET ?= band-offline-df-sep-pesq
FULL0_OPTIONS ?= {"context_full_levels": [0]}
# the shipped model's run until 2026-12-06 (ab-ft-ship-crop4) fine-tuned this run's weights; the
# arms that repeat that stage start from it too
WS_RUN ?= $(RUNS)/ab-ws-sep-pesq
# the checkpoint of each that the ship rule chose (docs/model-gen2.md)
SHIPPED_CHECKPOINT ?= best-quality.weights.h5

.PHONY: help venv install-service install-full install-browser serve test dataset dataset-band train-band train-offline train-ship train-stream train-offline-df train-offline-pesq train-offline-sep train-offline-outctx train-offline-outctx-more train-offline-dp train-offline-wide train-offline-outctx2 keep-run restore-run keep-band-run export-stream evaluate-stream candidate candidate-int8 candidate-stream arm-val extra-noise-by-category noise-balance-by-category arms arms-report long-runs-report export-band reproduce-gen1 train train-seed export export-seed evaluate evaluate-seed benchmark reproduce reproduce-seed training-report clean

help:
	@echo "make serve   - create .venv, install the service (no TensorFlow), serve models/ on port $(PORT)"
	@echo "make test    - create .venv, install everything incl. training extras, run the test suite"
	@echo "make reproduce - rebuild the datasets from $(DATA), train the band networks, export and evaluate the shipped offline and streaming models"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Stamp files record what was installed, so repeated runs are no-ops.
$(VENV)/.service-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.bench-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e '.[bench]'
	touch $@ $(VENV)/.service-installed

$(VENV)/.full-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e '.[training,test,batch,bench]'
	touch $@ $(VENV)/.service-installed $(VENV)/.bench-installed

# the page's browser test drives Debian's Chromium (Playwright's own browser builds are never downloaded)
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

install-service: $(VENV)/.service-installed
install-full: $(VENV)/.full-installed
install-browser: $(CHROMIUM)

serve: install-service
	PORT=$(PORT) HOST=$(HOST) $(PY) -m service

# the suite runs in one process per CPU (pytest-xdist), each test module whole in one of them,
# so that a module's trained tiny runs are built once; TEST_WORKERS=0 runs it in this process
TEST_WORKERS ?= auto
test: install-full install-browser
	$(VENV)/bin/ruff check --select F,E9 denoise_core service training tests
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

dataset: install-full
	$(PY) -m training.data build --librispeech $(DATA)/LibriSpeech --esc50 $(DATA)/ESC-50 --out $(BUILD)/dataset --segment --mix snr

# the band preset's data: the same build plus the extra rain and thunder recordings in the training noise
dataset-band: install-full
	$(PY) -m training.data build --librispeech $(DATA)/LibriSpeech --esc50 $(DATA)/ESC-50 --out $(BAND_DATASET) --segment --mix snr \
		--extra-noise $(DATA)/extra-noise

# Runs are step-based and resumable: rerun after an interruption (a session's end) and a run goes
# on from its last epoch. `make keep-run RUN=<run directory>` keeps a run's resume state (last-epoch
# backup, logs, best-quality checkpoint) in the repository under $(KEEP_DIR)/<run name>, and
# `make restore-run RUN=<run directory>` (each training rule runs it first) copies it back on a
# machine without the run directory.
KEEP_DIR ?= models/checkpoints
KEPT = $(KEEP_DIR)/$(notdir $(RUN))
RESTORE = $(MAKE) --no-print-directory restore-run RUN=$(1)
BAND_KEPT := $(KEEP_DIR)/$(notdir $(BAND_RUN))
# TRAIN_THREADS=1 runs a long run and the arms at one TensorFlow thread each, so that both fit side by side
TRAIN_THREADS ?=
THREADS_OPT = $(if $(TRAIN_THREADS),--threads $(TRAIN_THREADS))
train-band: install-full
	@$(call RESTORE,$(BAND_RUN))
	$(PY) -m training.train --data $(BAND_DATASET) --preset $(BAND_PRESET) --out $(BAND_RUN) $(THREADS_OPT)

# the third long run (docs/model-gen2.md): the offline model, preset band-offline, 70,000 steps
OFFLINE_RUN ?= $(RUNS)/band-offline
train-offline: install-full
	@$(call RESTORE,$(OFFLINE_RUN))
	$(PY) -m training.train --data $(BAND_DATASET) --preset band-offline --out $(OFFLINE_RUN) $(THREADS_OPT)

# the shipped offline model's run, in three stages, each resumed or trained: the eighth long run
# (OUTCTX_RUN); its best-quality weights fine-tuned on 4-s crops with the perceptual term in
# OUTCTX_FT_RUN; that run's best-quality weights fine-tuned in SHIP_RUN on 5-s crops following the
# mean of OUTCTX_FT_RUN's network and TEACHER_RUN's (the fifth long run, DF_RUN, fine-tuned the
# same way): OUTCTX_KD_OPTS
train-ship: train-offline-df train-offline-outctx
	@$(call RESTORE,$(TEACHER_RUN))
	$(call TRAIN_FROM,$(DF_RUN)) $(FT_CROP4_OPTS) --out $(TEACHER_RUN)
	@$(call RESTORE,$(OUTCTX_FT_RUN))
	$(call TRAIN_FROM,$(OUTCTX_RUN)) $(OUTCTX_FT_OPTS) --out $(OUTCTX_FT_RUN)
	@$(call RESTORE,$(SHIP_RUN))
	$(call TRAIN_FROM,$(OUTCTX_FT_RUN)) $(OUTCTX_KD_OPTS) --out $(SHIP_RUN)

# the fourth long run (docs/model-gen2.md): the streaming model, preset band-stream, 70,000 steps
STREAM_RUN ?= $(RUNS)/band-stream
train-stream: install-full
	@$(call RESTORE,$(STREAM_RUN))
	$(PY) -m training.train --data $(BAND_DATASET) --preset band-stream --out $(STREAM_RUN) $(THREADS_OPT)

# the fifth long run (docs/model-gen2.md): the offline model with a deep filter on the low bins,
# preset band-offline-df, 70,000 steps
DF_RUN ?= $(RUNS)/band-offline-df
train-offline-df: install-full
	@$(call RESTORE,$(DF_RUN))
	$(PY) -m training.train --data $(BAND_DATASET) --preset band-offline-df --out $(DF_RUN) $(THREADS_OPT)

# the sixth long run (docs/model-gen2.md): band-offline-df with the perceptual loss term,
# preset band-offline-df-pesq, 70,000 steps
PESQ_RUN ?= $(RUNS)/band-offline-df-pesq
train-offline-pesq: install-full
	@$(call RESTORE,$(PESQ_RUN))
	$(PY) -m training.train --data $(BAND_DATASET) --preset band-offline-df-pesq --out $(PESQ_RUN) $(THREADS_OPT)

# the seventh long run (docs/model-gen2.md): band-offline-df-pesq with separable context blocks,
# preset band-offline-df-sep-pesq, 70,000 steps
SEP_RUN ?= $(RUNS)/band-offline-df-sep-pesq
train-offline-sep: install-full
	@$(call RESTORE,$(SEP_RUN))
	$(PY) -m training.train --data $(BAND_DATASET) --preset band-offline-df-sep-pesq --out $(SEP_RUN) $(THREADS_OPT)

# the eighth long run (docs/model-gen2.md): the sixth's recipe with one full context block after
# the output decoder level, at full band resolution, 70,000 steps
OUTCTX_RUN ?= $(RUNS)/band-offline-df-outctx
OUTCTX_OPTIONS = {"output_context": [1]}
OUTCTX_FT_RUN ?= $(RUNS)/ab-ft-outctx-crop4
train-offline-outctx: install-full
	@$(call RESTORE,$(OUTCTX_RUN))
	$(PY) -m training.train --data $(BAND_DATASET) --preset band-offline-df-pesq --model-options '$(OUTCTX_OPTIONS)' --out $(OUTCTX_RUN) $(THREADS_OPT)

# the ninth long run (docs/model-gen2.md): the eighth's final weights trained 30,000 steps more on
# a new cosine from 5e-4, the same crops and loss (a warm restart: does more training pay?)
MORE_RUN ?= $(RUNS)/band-offline-df-outctx-more
train-offline-outctx-more: install-full
	@$(call RESTORE,$(OUTCTX_RUN)) && $(call RESTORE,$(MORE_RUN))
	$(call TRAIN_FROM,$(OUTCTX_RUN)) --preset band-offline-df-pesq --model-options '$(OUTCTX_OPTIONS)' \
		--epochs 60 $(WS_OPTS) --quality-every 10 --out $(MORE_RUN)

# the tenth long run (docs/model-gen2.md): the eighth's recipe with a dual-path bottleneck (the band
# axis kept, four time and band sub-block pairs) in place of the flattened one, 70,000 steps
DP_RUN ?= $(RUNS)/band-offline-df-dp
DP_OPTIONS = {"output_context": [1], "dual_path": 32, "dilations": [1, 2, 4, 8], "kernel_time": 5}
train-offline-dp: install-full
	@$(call RESTORE,$(DP_RUN))
	$(PY) -m training.train --data $(BAND_DATASET) --preset band-offline-df-pesq --model-options '$(DP_OPTIONS)' --out $(DP_RUN) $(THREADS_OPT)

# the eleventh long run (docs/model-gen2.md): the eighth's recipe with 32 channels at the second
# encoder level and ten temporal blocks (dilations 1-16, twice) in place of eight, 70,000 steps
WIDE_RUN ?= $(RUNS)/band-offline-df-c32d10
WIDE_OPTIONS = {"output_context": [1], "channels": [16, 32], "dilations": [1, 2, 4, 8, 16, 1, 2, 4, 8, 16]}
train-offline-wide: install-full
	@$(call RESTORE,$(WIDE_RUN))
	$(PY) -m training.train --data $(BAND_DATASET) --preset band-offline-df-pesq --model-options '$(WIDE_OPTIONS)' --out $(WIDE_RUN) $(THREADS_OPT)

# the twelfth long run (docs/model-gen2.md): the eighth's recipe with a second full context block
# (time dilation 2) after the output decoder level, 70,000 steps
OUTCTX2_RUN ?= $(RUNS)/band-offline-df-outctx2
OUTCTX2_OPTIONS = {"output_context": [1, 2]}
train-offline-outctx2: install-full
	@$(call RESTORE,$(OUTCTX2_RUN))
	$(PY) -m training.train --data $(BAND_DATASET) --preset band-offline-df-pesq --model-options '$(OUTCTX2_OPTIONS)' --out $(OUTCTX2_RUN) $(THREADS_OPT)

keep-run:
	@test -n "$(RUN)" && test -d "$(RUN)" || { echo "usage: make keep-run RUN=<run directory>"; exit 2; }
	mkdir -p $(KEPT)
	[ ! -d $(RUN)/backup ] || { mkdir -p $(KEPT)/backup && cp $(RUN)/backup/* $(KEPT)/backup/; }
	for f in config.json history.csv time.json quality.csv best-quality.weights.h5 result.json; do \
		[ ! -f $(RUN)/$$f ] || cp $(RUN)/$$f $(KEPT)/; done

restore-run:
	@test -n "$(RUN)" || { echo "usage: make restore-run RUN=<run directory>"; exit 2; }
	@if [ ! -d $(RUN) ] && [ -d $(KEPT) ]; then mkdir -p $(RUN) && cp -r $(KEPT)/. $(RUN)/ && echo "resuming $(RUN) from $(KEPT)"; fi

# the shipped run's kept state also holds its best-validation and shipped checkpoints
keep-band-run:
	$(MAKE) --no-print-directory keep-run RUN=$(BAND_RUN)
	for f in best.weights.h5 $(SHIPPED_CHECKPOINT); do [ ! -f $(BAND_RUN)/$$f ] || cp $(BAND_RUN)/$$f $(BAND_KEPT)/; done

# the comparison arms of docs/model-gen2.md, one after another at equal steps; each arm's
# result.json marks it done, and an interrupted arm resumes when `make arms` runs again
ARM_TRAIN = $(call RESTORE,$(@D)) && $(PY) -m training.train --data $(BAND_DATASET) --epochs 16 --quality-every 8 $(THREADS_OPT)
ARMS := ab-band-L2 ab-band-L2-seed1 ab-band-L0 ab-band-wide ab-band-ctx-relu ab-band-oldloss ab-band-ctx-dec ab-band-oldloss-seed1 ab-band-Lnone ab-band-ctx-b256 ab-band-ctx-124 ab-band-mask ab-band-ctx-oldloss ab-band-ctx-mask ab-band-ctx-oldloss-over3 ab-band-ctx-oldloss-bf16 ab-band-offline ab-band-offline-df ab-band-offline-df-sepwide ab-band-offline-df-sep ab-band-stream-df ab-band-offline-df4k-sep ab-band-offline-df-pesq ab-ft-df ab-ft-df-pesq ab-ft-df-pesq-seed1 ab-ft-df-seed1 ab-band-offline-df-pesq-noextra ab-ws-sep-pesq ab-ws-ft-sep-pesq ab-ft-ship-p60 ab-ft-ship-p20 ab-ws-sep-ctxc ab-ft-ship-crop4 ab-ft-ship-critic ab-ft-ship-p60-seed1 ab-ft-ship-p20-seed1 ab-ws-crop4 ab-ft-df-crop4 ab-kd-ship-crop4 ab-ws-crop4-full0 ab-ws-crop4-full1 ab-ws-crop4-c32 ab-ft-ship-crop4-c32 ab-kd-full0-crop5 ab-ft-full0-crop5 ab-kd-ens-full0-crop5 ab-ft-pesq-crop4 ab-kd-ens-w3-full0-crop5 ab-kd-ens-df-crop5 ab-kd-ens-long-full0-crop5 ab-kd-ens-df-long-crop5 ab-band-offline-df-sep-outctx ab-kd-ens-df-long-crop5-seed1 ab-ft-outctx-crop4 ab-kd-ens-outctx-crop5 ab-kd-ens-outctx-nb-crop5 ab-kd-ens4-crop5
# an arm whose result is archived in docs/runs (`make training-report`) is done on any machine
ARMS_ARCHIVED := $(patsubst docs/runs/%/result.json,%,$(wildcard $(addprefix docs/runs/,$(addsuffix /result.json,$(ARMS)))))
arms: $(foreach arm,$(filter-out $(ARMS_ARCHIVED),$(ARMS)),$(RUNS)/$(arm)/result.json)
$(RUNS)/ab-band-L2/result.json: | install-full
	$(ARM_TRAIN) --preset band --out $(@D)
$(RUNS)/ab-band-L2-seed1/result.json: | install-full
	$(ARM_TRAIN) --preset band --seed 1 --out $(@D)
$(RUNS)/ab-band-L0/result.json: | install-full
	$(ARM_TRAIN) --preset band --model-options '{"lookahead": 0}' --out $(@D)
$(RUNS)/ab-band-Lnone/result.json: | install-full
	$(ARM_TRAIN) --preset band --model-options '{"lookahead": null}' --out $(@D)
$(RUNS)/ab-band-mask/result.json: | install-full
	$(ARM_TRAIN) --preset band-mask --out $(@D)
$(RUNS)/ab-band-oldloss/result.json: | install-full
	$(ARM_TRAIN) --preset band --wave-loss si_sdr --mag-loss-weight 1500 --out $(@D)
$(RUNS)/ab-band-oldloss-seed1/result.json: | install-full
	$(ARM_TRAIN) --preset band --wave-loss si_sdr --mag-loss-weight 1500 --seed 1 --out $(@D)
$(RUNS)/ab-band-wide/result.json: | install-full
	$(ARM_TRAIN) --preset band --model-options '{"channels": [24, 32], "bottleneck": 256}' --out $(@D)
$(RUNS)/ab-band-ctx-relu/result.json: | install-full
	$(ARM_TRAIN) --preset band --model-options '{"context": [1, 2], "activation": "relu"}' --out $(@D)
$(RUNS)/ab-band-ctx-dec/result.json: | install-full
	$(ARM_TRAIN) --preset band-ctx --model-options '{"decoder_context": [1, 2]}' --out $(@D)
$(RUNS)/ab-band-ctx-b256/result.json: | install-full
	$(ARM_TRAIN) --preset band-ctx --model-options '{"bottleneck": 256}' --out $(@D)
$(RUNS)/ab-band-ctx-124/result.json: | install-full
	$(ARM_TRAIN) --preset band-ctx --model-options '{"context": [1, 2, 4]}' --out $(@D)
$(RUNS)/ab-band-ctx-oldloss/result.json: | install-full
	$(ARM_TRAIN) --preset band-ctx --wave-loss si_sdr --mag-loss-weight 1500 --out $(@D)
$(RUNS)/ab-band-ctx-mask/result.json: | install-full
	$(ARM_TRAIN) --preset band-mask --model-options '{"context": [1, 2], "activation": "relu"}' --out $(@D)
$(RUNS)/ab-band-ctx-oldloss-over3/result.json: | install-full
	$(ARM_TRAIN) --preset band-ctx --wave-loss si_sdr --mag-loss-weight 1500 --overshoot 3 --out $(@D)
$(RUNS)/ab-band-ctx-oldloss-bf16/result.json: | install-full
	$(ARM_TRAIN) --preset band-ctx --wave-loss si_sdr --mag-loss-weight 1500 --precision mixed_bfloat16 --out $(@D)
$(RUNS)/ab-band-offline/result.json: | install-full
	$(ARM_TRAIN) --preset band-offline --out $(@D)
$(RUNS)/ab-band-offline-df/result.json: | install-full
	$(ARM_TRAIN) --preset band-offline-df --out $(@D)
$(RUNS)/ab-band-offline-df-sepwide/result.json: | install-full
	$(ARM_TRAIN) --preset band-offline-df --model-options '{"context_separable": true, "channels": [24, 32]}' --out $(@D)
$(RUNS)/ab-band-offline-df-sep/result.json: | install-full
	$(ARM_TRAIN) --preset band-offline-df --model-options '{"context_separable": true}' --out $(@D)
# the same with one full context block after the output decoder level, at full band resolution
$(RUNS)/ab-band-offline-df-sep-outctx/result.json: | install-full
	$(ARM_TRAIN) --preset band-offline-df --model-options '{"context_separable": true, "output_context": [1], "output_context_full": true}' --out $(@D)
$(RUNS)/ab-band-offline-df4k-sep/result.json: | install-full
	$(ARM_TRAIN) --preset band-offline-df4k --model-options '{"context_separable": true}' --out $(@D)
$(RUNS)/ab-band-offline-df-pesq/result.json: | install-full
	$(ARM_TRAIN) --preset band-offline-df --perceptual-weight 20 --out $(@D)
$(RUNS)/ab-band-stream-df/result.json: | install-full
	$(ARM_TRAIN) --preset band-offline-df --model-options '{"context_separable": true, "lookahead": 2}' --out $(@D)
# the same as ab-band-offline-df-pesq on the build without the extra noise recordings (--data: the last one counts)
$(RUNS)/ab-band-offline-df-pesq-noextra/result.json: | install-full
	$(ARM_TRAIN) --preset band-offline-df --perceptual-weight 20 --data $(BUILD)/dataset --out $(@D)
# training that starts from the best-quality weights of run $(1), scored every 4 epochs
# (TRAIN_FROM); an arm first restores that run and its own kept state (ARM_FROM)
TRAIN_FROM = $(PY) -m training.train --data $(BAND_DATASET) --init-weights $(1)/best-quality.weights.h5 --quality-every 4 $(THREADS_OPT)
ARM_FROM = $(call RESTORE,$(1)) && $(call RESTORE,$(@D)) && $(call TRAIN_FROM,$(1))
# a fine-tune: 6,000 steps at a tenth of the long runs' peak learning rate
FT_OPTS = --epochs 12 --lr 0.0002 --warmup-steps 200
# a warm start into a network that differs from the source only in its context blocks
# (training.warm_start): a cosine from a quarter of the long runs' peak
WS_OPTS = --lr 0.0005 --warmup-steps 500
# the fine-tune arms: band-offline-df's final weights, with the perceptual term and without it (the control)
FT_TRAIN = $(call ARM_FROM,$(DF_RUN)) --preset band-offline-df $(FT_OPTS)
$(RUNS)/ab-ft-df/result.json: | install-full
	$(FT_TRAIN) --out $(@D)
$(RUNS)/ab-ft-df-pesq/result.json: | install-full
	$(FT_TRAIN) --perceptual-weight 20 --out $(@D)
$(RUNS)/ab-ft-df-seed1/result.json: | install-full
	$(FT_TRAIN) --seed 1 --out $(@D)
$(RUNS)/ab-ft-df-pesq-seed1/result.json: | install-full
	$(FT_TRAIN) --perceptual-weight 20 --seed 1 --out $(@D)
# the warm starts, 8,000 steps from band-offline-df's final weights (WS_TRAIN: ab-ws-sep-pesq, the
# shipped run, starts the seventh long run's network so) and 10,000 from ab-ft-df-pesq's
WS_TRAIN = $(call TRAIN_FROM,$(DF_RUN)) --epochs 16 $(WS_OPTS)
$(RUNS)/ab-ws-sep-pesq/result.json: | install-full
	$(call ARM_FROM,$(DF_RUN)) --epochs 16 $(WS_OPTS) --preset $(SEP_PRESET) --out $(@D)
$(RUNS)/ab-ws-ft-sep-pesq/result.json: | install-full
	$(call ARM_FROM,$(RUNS)/ab-ft-df-pesq) --epochs 20 $(WS_OPTS) --preset $(SEP_PRESET) --out $(@D)
# ab-ws-sep-pesq with centred context blocks (docs/model-gen2.md, "Context blocks that look ahead")
$(RUNS)/ab-ws-sep-ctxc/result.json: | install-full
	$(call ARM_FROM,$(DF_RUN)) --epochs 16 $(WS_OPTS) --preset $(SEP_PRESET) --model-options '{"context_centred": true}' --out $(@D)
# WS_RUN (the shipped run until the crop fine-tune) fine-tuned with the perceptual term at 60 and,
# as the control, at its own 20
# (docs/model-gen2.md, "A heavier perceptual term")
SHIP_FT_TRAIN = $(call ARM_FROM,$(WS_RUN)) --preset $(SEP_PRESET) $(FT_OPTS)
# the fine-tune on 4-s crops: half the steps, the same audio
CROP4_OPTS = --perceptual-weight 20 --crop-seconds 4 --epochs 6 --warmup-steps 100 --quality-every 2
$(RUNS)/ab-ft-ship-p60/result.json: | install-full
	$(SHIP_FT_TRAIN) --perceptual-weight 60 --out $(@D)
$(RUNS)/ab-ft-ship-p20/result.json: | install-full
	$(SHIP_FT_TRAIN) --perceptual-weight 20 --out $(@D)
$(RUNS)/ab-ft-ship-p60-seed1/result.json: | install-full
	$(SHIP_FT_TRAIN) --perceptual-weight 60 --seed 1 --out $(@D)
$(RUNS)/ab-ft-ship-p20-seed1/result.json: | install-full
	$(SHIP_FT_TRAIN) --perceptual-weight 20 --seed 1 --out $(@D)
# the same fine-tune with a learned PESQ critic (docs/model-gen2.md, "A learned PESQ critic")
$(RUNS)/ab-ft-ship-critic/result.json: | install-full
	$(SHIP_FT_TRAIN) --perceptual-weight 20 --critic-weight 50 --critic-warmup-steps 500 --out $(@D)
# the same fine-tune on 4-s crops (docs/model-gen2.md, "Longer crops"; the shipped run since 2026-12-05)
$(RUNS)/ab-ft-ship-crop4/result.json: | install-full
	$(SHIP_FT_TRAIN) $(CROP4_OPTS) --out $(@D)
# the fifth long run's network fine-tuned as ab-ft-ship-crop4 (docs/model-gen2.md, "Does capacity limit the shipped network?")
FT_CROP4_OPTS = --preset band-offline-df-pesq $(FT_OPTS) $(CROP4_OPTS)
$(RUNS)/ab-ft-df-crop4/result.json: | install-full
	$(call ARM_FROM,$(DF_RUN)) $(FT_CROP4_OPTS) --out $(@D)
# the sixth long run's network fine-tuned as ab-ft-df-crop4 (docs/model-gen2.md, "A mean of networks as the teacher")
$(RUNS)/ab-ft-pesq-crop4/result.json: | install-full
	$(call ARM_FROM,$(PESQ_RUN)) $(FT_CROP4_OPTS) --out $(@D)
# ab-ws-sep-pesq's warm start on 4-s crops, the audio of the warm start and the crop fine-tune
# together (docs/model-gen2.md, "The warm start on 4-s crops")
WS_CROP4_OPTS = --epochs 14 $(WS_OPTS) --crop-seconds 4 --quality-every 2
WS_CROP4_TRAIN = $(call ARM_FROM,$(DF_RUN)) $(WS_CROP4_OPTS) --preset $(SEP_PRESET)
$(RUNS)/ab-ws-crop4/result.json: | install-full
	$(WS_CROP4_TRAIN) --out $(@D)
# ab-ws-crop4 with a longer temporal reach at the same cost (docs/model-gen2.md, "A longer temporal reach at the same cost");
# stopped early for good and kept without resume state, so not in ARMS
$(RUNS)/ab-ws-crop4-reach/result.json: | install-full
	$(WS_CROP4_TRAIN) --model-options '{"dilations": [1, 2, 4, 8, 16, 32, 1, 2]}' --out $(@D)
# ab-ws-crop4 with the first (full0) or the second (full1) encoder level's context blocks kept full
# (docs/model-gen2.md, "Full context blocks at one level")
$(RUNS)/ab-ws-crop4-full0/result.json: | install-full
	$(WS_CROP4_TRAIN) --model-options '{"context_full_levels": [0]}' --out $(@D)
$(RUNS)/ab-ws-crop4-full1/result.json: | install-full
	$(WS_CROP4_TRAIN) --model-options '{"context_full_levels": [1]}' --out $(@D)
# ab-ws-crop4, and ab-ft-ship-crop4, with a wider second encoder level (24 -> 32 channels; training.widening)
# (docs/model-gen2.md, "A wider second level at no inference cost")
$(RUNS)/ab-ws-crop4-c32/result.json: | install-full
	$(WS_CROP4_TRAIN) --model-options '{"channels": [16, 32]}' --out $(@D)
$(RUNS)/ab-ft-ship-crop4-c32/result.json: | install-full
	$(SHIP_FT_TRAIN) $(CROP4_OPTS) --model-options '{"channels": [16, 32]}' --out $(@D)
# ab-ft-ship-crop4 following ab-ft-df-crop4's network as a teacher (docs/model-gen2.md, "Following the larger network")
TEACHER_RUN ?= $(RUNS)/ab-ft-df-crop4
$(RUNS)/ab-kd-ship-crop4/result.json: | install-full
	$(call RESTORE,$(TEACHER_RUN)) && $(SHIP_FT_TRAIN) $(CROP4_OPTS) --teacher $(TEACHER_RUN)/best-quality.weights.h5 --out $(@D)
# ab-ws-crop4-full0 fine-tuned as ab-ft-df-crop4 on 5-s crops, following ab-ft-df-crop4 as a teacher
# (the shipped run on 2026-12-06; docs/model-gen2.md, "Following the larger network from the
# shipped one, on whole clips")
FULL0_RUN ?= $(RUNS)/ab-ws-crop4-full0
KD_CROP5_OPTS = --preset $(SEP_PRESET) --model-options '$(FULL0_OPTIONS)' $(FT_OPTS) $(CROP4_OPTS) --crop-seconds 5
$(RUNS)/ab-kd-full0-crop5/result.json: | install-full
	$(call RESTORE,$(TEACHER_RUN)) && $(call ARM_FROM,$(FULL0_RUN)) $(KD_CROP5_OPTS) --teacher $(TEACHER_RUN)/best-quality.weights.h5 --out $(@D)
# the same without the teacher (its control)
$(RUNS)/ab-ft-full0-crop5/result.json: | install-full
	$(call ARM_FROM,$(FULL0_RUN)) $(KD_CROP5_OPTS) --out $(@D)
# the eighth long run's network warm-started into the smaller design (ab-ws-crop4-full0's) with its
# full output block, on 4-s crops as ab-ws-crop4-full0 (docs/model-gen2.md, "The eighth long run":
# the rule's first branch, replaced by the two targets below once the full-block network shipped)
OUTCTX_FULL0_OPTIONS = {"context_full_levels": [0], "output_context": [1], "output_context_full": true}
$(RUNS)/ab-ws-outctx-crop4/result.json: | install-full
	$(call ARM_FROM,$(OUTCTX_RUN)) $(WS_CROP4_OPTS) --preset $(SEP_PRESET) --model-options '$(OUTCTX_FULL0_OPTIONS)' --out $(@D)
# the eighth long run's own network through the later stages of ab-kd-ens-df-long-crop5
# (docs/model-gen2.md, "The eighth long run"): fine-tuned on 4-s crops as TEACHER_RUN, then on
# 5-s crops following the mean of that fine-tune and TEACHER_RUN (the shipped run since
# 2026-12-07: OUTCTX_FT_RUN and SHIP_RUN of train-ship)
OUTCTX_FT_OPTS = $(FT_CROP4_OPTS) --model-options '$(OUTCTX_OPTIONS)'
OUTCTX_KD_OPTS = $(KD_ENS_LONG_OPTS) --model-options '$(OUTCTX_OPTIONS)' \
	--teacher $(OUTCTX_FT_RUN)/best-quality.weights.h5 $(TEACHER_RUN)/best-quality.weights.h5
$(RUNS)/ab-ft-outctx-crop4/result.json: | install-full
	$(call ARM_FROM,$(OUTCTX_RUN)) $(OUTCTX_FT_OPTS) --out $(@D)
$(RUNS)/ab-kd-ens-outctx-crop5/result.json: | install-full
	$(call RESTORE,$(TEACHER_RUN)) && $(call ARM_FROM,$(OUTCTX_FT_RUN)) $(OUTCTX_KD_OPTS) --out $(@D)
# the shipped stage with noise recordings drawn more evenly (each clip weighted by its recording's
# clip count ** -0.5; the preset's other mixer options unchanged)
NB_MIXER_OPTIONS = {"speech_speed_prob": 0.5, "speech_eq_prob": 0.5, "speaker_balance": 0.5, "synthetic_noise_prob": 0.5, "noise_balance": 0.5}
$(RUNS)/ab-kd-ens-outctx-nb-crop5/result.json: | install-full
	$(call RESTORE,$(TEACHER_RUN)) && $(call ARM_FROM,$(OUTCTX_FT_RUN)) $(OUTCTX_KD_OPTS) --mixer-options '$(NB_MIXER_OPTIONS)' --out $(@D)
# the shipped stage's final network, 3,000 steps more on 5-s crops following the mean of the four
# best final-stage networks (docs/model-gen2.md, "A mean of four final-stage networks as the teacher")
ENS4_RUNS = $(SHIP_RUN) $(RUNS)/ab-kd-ens-outctx-nb-crop5 $(RUNS)/ab-kd-ens-df-long-crop5 $(RUNS)/ab-kd-ens-df-long-crop5-seed1
$(RUNS)/ab-kd-ens4-crop5/result.json: | install-full
	for run in $(ENS4_RUNS); do $(call RESTORE,$$run) || exit 1; done
	$(call ARM_FROM,$(SHIP_RUN)) $(FT_CROP4_OPTS) --crop-seconds 5 --model-options '$(OUTCTX_OPTIONS)' \
		--teacher $(addsuffix /best-quality.weights.h5,$(ENS4_RUNS)) --out $(@D)
# the shipped network's third stage following the mean of two full-block networks of separate
# long runs (training.ensemble: the teacher "B" of docs/model-gen2.md)
ENS_TEACHERS = $(TEACHER_RUN)/best-quality.weights.h5 $(PESQ_RUN)/best-quality.weights.h5
ENS_RESTORE = $(call RESTORE,$(TEACHER_RUN)) && $(call RESTORE,$(PESQ_RUN))
$(RUNS)/ab-kd-ens-full0-crop5/result.json: | install-full
	$(ENS_RESTORE) && $(call ARM_FROM,$(FULL0_RUN)) $(KD_CROP5_OPTS) --teacher $(ENS_TEACHERS) --out $(@D)
# the same with the term against the teacher weighted 3
$(RUNS)/ab-kd-ens-w3-full0-crop5/result.json: | install-full
	$(ENS_RESTORE) && $(call ARM_FROM,$(FULL0_RUN)) $(KD_CROP5_OPTS) --teacher $(ENS_TEACHERS) --teacher-weight 3 --out $(@D)
# the full-block network (TEACHER_RUN's) following the same mean, 5-s crops (it measures capacity)
$(RUNS)/ab-kd-ens-df-crop5/result.json: | install-full
	$(ENS_RESTORE) && $(call ARM_FROM,$(TEACHER_RUN)) $(FT_CROP4_OPTS) --crop-seconds 5 --teacher $(ENS_TEACHERS) --out $(@D)
# the shipped-size student following the same mean for 9,000 steps instead of 3,000 (the cosine over all of them)
$(RUNS)/ab-kd-ens-long-full0-crop5/result.json: | install-full
	$(ENS_RESTORE) && $(call ARM_FROM,$(FULL0_RUN)) $(KD_CROP5_OPTS) --epochs 18 --teacher $(ENS_TEACHERS) --out $(@D)
# the full-block student following the same mean for 9,000 steps (the two-by-two of size and
# length; the shipped run on 2026-12-06 and 07)
KD_ENS_LONG_OPTS = $(FT_CROP4_OPTS) --crop-seconds 5 --epochs 18
$(RUNS)/ab-kd-ens-df-long-crop5/result.json: | install-full
	$(ENS_RESTORE) && $(call ARM_FROM,$(TEACHER_RUN)) $(KD_ENS_LONG_OPTS) --teacher $(ENS_TEACHERS) --out $(@D)
# its second seed (docs/model-gen2.md, "The shipped stage's second seed")
$(RUNS)/ab-kd-ens-df-long-crop5-seed1/result.json: | install-full
	$(ENS_RESTORE) && $(call ARM_FROM,$(TEACHER_RUN)) $(KD_ENS_LONG_OPTS) --teacher $(ENS_TEACHERS) --seed 1 --out $(@D)

# the arms at their best-quality checkpoints against the base recipe's two seeds (from the records
# that `make training-report` archives in docs/runs); the fine-tune and distillation arms (ab-ft-*, ab-kd-*) start from a finished run and are compared with each other (long-runs-report); the warm-start arm (ab-ws-*) is compared with them in docs/model-gen2.md
arms-report: training-report
	$(PY) -m training.compare_arms docs/runs/ab-band-L2 docs/runs/ab-band-L2-seed1 \
		$(wildcard $(addprefix docs/runs/,$(filter-out ab-band-L2 ab-band-L2-seed1 ab-ft-% ab-ws-% ab-kd-%,$(ARMS)))) --out docs/arms-report.md

# the long runs' learning curves at equal steps (from the archived records): the second against
# the first, the offline run against the streaming model's run, and the streaming run and the
# deep-filter run in training against the offline one
long-runs-report: training-report
	$(PY) -m training.compare_curves docs/runs/band-L2 docs/runs/band-ctx --out docs/long-runs-report.md
	$(PY) -m training.compare_curves docs/runs/$(notdir $(BAND_RUN)) docs/runs/$(notdir $(OFFLINE_RUN)) --out docs/offline-run-report.md
	$(PY) -m training.compare_curves docs/runs/$(notdir $(OFFLINE_RUN)) docs/runs/$(notdir $(STREAM_RUN)) --out docs/stream-run-report.md
	[ ! -f docs/runs/$(notdir $(DF_RUN))/history.csv ] || $(PY) -m training.compare_curves docs/runs/$(notdir $(OFFLINE_RUN)) docs/runs/$(notdir $(DF_RUN)) --out docs/df-run-report.md
	[ ! -f docs/runs/$(notdir $(PESQ_RUN))/history.csv ] || $(PY) -m training.compare_curves docs/runs/$(notdir $(DF_RUN)) docs/runs/$(notdir $(PESQ_RUN)) --out docs/pesq-run-report.md
	[ ! -f docs/runs/ab-ft-df-pesq/history.csv ] || $(PY) -m training.compare_curves docs/runs/ab-ft-df docs/runs/ab-ft-df-pesq --out docs/ft-arms-report.md
	[ ! -f docs/runs/$(notdir $(SEP_RUN))/history.csv ] || $(PY) -m training.compare_curves docs/runs/$(notdir $(PESQ_RUN)) docs/runs/$(notdir $(SEP_RUN)) --out docs/sep-run-report.md
	[ ! -f docs/runs/$(notdir $(OUTCTX_RUN))/history.csv ] || $(PY) -m training.compare_curves docs/runs/$(notdir $(PESQ_RUN)) docs/runs/$(notdir $(OUTCTX_RUN)) --out docs/outctx-run-report.md
	[ ! -f docs/runs/$(notdir $(DP_RUN))/history.csv ] || $(PY) -m training.compare_curves docs/runs/$(notdir $(OUTCTX_RUN)) docs/runs/$(notdir $(DP_RUN)) --out docs/dp-run-report.md
	[ ! -f docs/runs/$(notdir $(WIDE_RUN))/history.csv ] || $(PY) -m training.compare_curves docs/runs/$(notdir $(OUTCTX_RUN)) docs/runs/$(notdir $(WIDE_RUN)) --out docs/wide-run-report.md
	[ ! -f docs/runs/$(notdir $(OUTCTX2_RUN))/history.csv ] || $(PY) -m training.compare_curves docs/runs/$(notdir $(OUTCTX_RUN)) docs/runs/$(notdir $(OUTCTX2_RUN)) --out docs/outctx2-run-report.md
	[ ! -f docs/runs/ab-ft-df-seed1/history.csv ] || $(PY) -m training.compare_curves docs/runs/ab-ft-df-seed1 docs/runs/ab-ft-df-pesq-seed1 --out docs/ft-arms-seed1-report.md
	[ ! -f docs/runs/ab-band-offline-df-pesq-noextra/history.csv ] || $(PY) -m training.compare_curves docs/runs/ab-band-offline-df-pesq docs/runs/ab-band-offline-df-pesq-noextra --out docs/extra-noise-report.md
	[ ! -f docs/runs/ab-ft-ship-p20/history.csv ] || $(PY) -m training.compare_curves docs/runs/ab-ft-ship-p20 docs/runs/ab-ft-ship-p60 --out docs/ft-ship-arms-report.md
	[ ! -f docs/runs/ab-ws-ft-sep-pesq/history.csv ] || $(PY) -m training.compare_curves docs/runs/ab-ws-sep-pesq docs/runs/ab-ws-ft-sep-pesq --out docs/ws-arms-report.md
	[ ! -f docs/runs/ab-ft-ship-critic/history.csv ] || $(PY) -m training.compare_curves docs/runs/ab-ft-ship-p20 docs/runs/ab-ft-ship-critic --out docs/critic-arm-report.md
	[ ! -f docs/runs/ab-ws-sep-ctxc/history.csv ] || $(PY) -m training.compare_curves docs/runs/ab-ws-sep-pesq docs/runs/ab-ws-sep-ctxc --out docs/ctxc-arm-report.md
	[ ! -f docs/runs/ab-ws-crop4-reach/history.csv ] || $(PY) -m training.compare_curves docs/runs/ab-ws-crop4 docs/runs/ab-ws-crop4-reach --out docs/reach-arm-report.md
	[ ! -f docs/runs/ab-kd-ship-crop4/history.csv ] || $(PY) -m training.compare_curves docs/runs/ab-ft-ship-crop4 docs/runs/ab-kd-ship-crop4 --out docs/kd-arm-report.md
	for arm in full0 full1; do [ ! -f docs/runs/ab-ws-crop4-$$arm/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-ws-crop4 docs/runs/ab-ws-crop4-$$arm --out docs/$$arm-arm-report.md || exit 1; done
	[ ! -f docs/runs/ab-ws-crop4-c32/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-ws-crop4 docs/runs/ab-ws-crop4-c32 --out docs/c32-arm-report.md
	[ ! -f docs/runs/ab-ft-full0-crop5/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-ft-full0-crop5 docs/runs/ab-kd-full0-crop5 --out docs/kd-crop5-arm-report.md
	[ ! -f docs/runs/ab-ft-ship-crop4-c32/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-ft-ship-crop4 docs/runs/ab-ft-ship-crop4-c32 --out docs/ft-c32-arm-report.md
	[ ! -f docs/runs/ab-kd-ens-full0-crop5/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-kd-full0-crop5 docs/runs/ab-kd-ens-full0-crop5 --out docs/kd-ens-arm-report.md
	[ ! -f docs/runs/ab-kd-ens-w3-full0-crop5/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-kd-ens-full0-crop5 docs/runs/ab-kd-ens-w3-full0-crop5 --out docs/kd-ens-w3-arm-report.md
	[ ! -f docs/runs/ab-kd-ens-df-crop5/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-kd-ens-full0-crop5 docs/runs/ab-kd-ens-df-crop5 --out docs/kd-ens-df-arm-report.md
	[ ! -f docs/runs/ab-kd-ens-long-full0-crop5/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-kd-ens-full0-crop5 docs/runs/ab-kd-ens-long-full0-crop5 --out docs/kd-ens-long-arm-report.md
	[ ! -f docs/runs/ab-kd-ens-df-long-crop5/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-kd-ens-long-full0-crop5 docs/runs/ab-kd-ens-df-long-crop5 --out docs/kd-ens-df-long-arm-report.md
	[ ! -f docs/runs/ab-kd-ens-df-long-crop5-seed1/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-kd-ens-df-long-crop5 docs/runs/ab-kd-ens-df-long-crop5-seed1 --out docs/kd-ens-df-long-seed1-report.md
	[ ! -f docs/runs/ab-band-offline-df-sep-outctx/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-band-offline-df-sep docs/runs/ab-band-offline-df-sep-outctx --out docs/outctx-arm-report.md
	[ ! -f docs/runs/ab-ft-outctx-crop4/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-ft-df-crop4 docs/runs/ab-ft-outctx-crop4 --out docs/ft-outctx-report.md
	[ ! -f docs/runs/ab-kd-ens-outctx-crop5/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-kd-ens-df-long-crop5 docs/runs/ab-kd-ens-outctx-crop5 --out docs/kd-ens-outctx-report.md
	[ ! -f docs/runs/ab-kd-ens-outctx-nb-crop5/quality.csv ] || $(PY) -m training.compare_curves docs/runs/ab-kd-ens-outctx-crop5 docs/runs/ab-kd-ens-outctx-nb-crop5 --out docs/noise-balance-arm-report.md

# an arm's best-quality checkpoint scored on the validation split, by noise category and SNR
# (`make arm-val ARM=<arm>` for the arm in $(RUNS)/<arm>; scored again when that checkpoint changes)
ARM_VAL = $(BUILD)/eval/val
$(ARM_VAL)/%/report.json: $(RUNS)/%/best-quality.weights.h5 | install-full
	$(PY) -m training.export --run $(RUNS)/$* --checkpoint best-quality.weights.h5 --out $(BUILD)/arms/$*/denoiser.onnx
	$(PY) -m training.evaluate --data $(BUILD)/dataset --split val --model $(BUILD)/arms/$*/denoiser.onnx --out $(@D) --peers none
arm-val: $(ARM_VAL)/$(ARM)/report.json

# the extra-noise arm's rule (docs/model-gen2.md): per mixture of the validation split, the arm
# trained with the extra recordings (after) against the one trained without them (before)
extra-noise-by-category: $(ARM_VAL)/ab-band-offline-df-pesq-noextra/report.json $(ARM_VAL)/ab-band-offline-df-pesq/report.json
	$(PY) -m training.evaluation.paired $^

# the noise-balance arm's rule: per mixture of the validation split, the arm (after) against the
# shipped stage it repeats (before)
noise-balance-by-category: $(ARM_VAL)/ab-kd-ens-outctx-crop5/report.json $(ARM_VAL)/ab-kd-ens-outctx-nb-crop5/report.json
	$(PY) -m training.evaluation.paired $^

# the ship rule of docs/model-gen2.md: the long run's (CANDIDATE_RUN) best-quality checkpoint exported as a
# candidate, scored on the test split, then the rule's verdict against the shipped model and
# the paired per-mixture comparison
CANDIDATE ?= $(BUILD)/candidate/denoiser.onnx
CANDIDATE_CHECKPOINT ?= best-quality.weights.h5
CANDIDATE_RUN ?= $(OFFLINE_RUN)
# model file $(1) scored on the test split into $(BUILD)/eval/$(2), then judged against the shipped
# model's report $(3): the ship rule's verdict and the paired comparison
JUDGE = $(PY) -m training.evaluate --data $(BUILD)/dataset --model $(1) --out $(BUILD)/eval/$(2) --peers none && \
	$(PY) -m training.evaluation.ship_rule $(3) $(BUILD)/eval/$(2)/report.json && \
	$(PY) -m training.evaluation.paired $(3) $(BUILD)/eval/$(2)/report.json
candidate: install-full
	@$(call RESTORE,$(CANDIDATE_RUN))
	$(PY) -m training.export --run $(CANDIDATE_RUN) --checkpoint $(CANDIDATE_CHECKPOINT) --out $(CANDIDATE)
	$(call JUDGE,$(CANDIDATE),candidate,models/evaluation/report.json)

# the same for CANDIDATE_RUN's checkpoint quantised to int8 (training.quantize: calibrated on 32
# validation mixtures, nodes quantised only while each alone and all together cost at most
# 0.05 dB of SI-SDR on 40 more; QUANTIZE_OPTS passes further options, such as --max-drop-db and
# --max-dnsmos-drop)
CANDIDATE_INT8 ?= $(BUILD)/candidate/denoiser-int8.onnx
# the int8 nodes of the shipped file: those of the screened file it replaced and the five largest
# float nodes within that SI-SDR screen alone (docs/model-gen2.md, "A speed margin from named nodes")
NAMED_INT8_NODES = MatMul_2 Conv_10 Conv_13 Conv_16 Conv_21 Conv_24 Conv_27 MatMul_32 MatMul_39 Conv_44 MatMul_47 \
	Conv_52 MatMul_55 Conv_60 MatMul_63 Conv_68 MatMul_71 Conv_76 MatMul_79 Conv_84 MatMul_87 Conv_92 MatMul_95 MatMul_98
QUANTIZE_OPTS ?=
candidate-int8: install-full
	@$(call RESTORE,$(CANDIDATE_RUN))
	$(PY) -m training.export --run $(CANDIDATE_RUN) --checkpoint $(CANDIDATE_CHECKPOINT) --out $(CANDIDATE)
	$(PY) -m training.quantize --model $(CANDIDATE) --data $(BAND_DATASET) --out $(CANDIDATE_INT8) $(QUANTIZE_OPTS)
	$(call JUDGE,$(CANDIDATE_INT8),candidate-int8,models/evaluation/report.json)

# the ship rule for the streaming model: the streaming run's (STREAM_RUN) best-quality checkpoint in
# streaming form, scored on the test split as a stream against the shipped streaming model
candidate-stream: install-full
	@$(call RESTORE,$(STREAM_RUN))
	$(PY) -m training.export_stream --run $(STREAM_RUN) --checkpoint $(CANDIDATE_CHECKPOINT) --out $(BUILD)/candidate-stream/denoiser-stream.onnx
	$(call JUDGE,$(BUILD)/candidate-stream/denoiser-stream.onnx,candidate-stream,models/evaluation/stream/report.json)

# the streaming model (WS /stream): the shipped checkpoint of the long run in its streaming form,
# scored on the test split as a stream (20-ms blocks), beside the offline model (the peers are
# in the offline model's evaluation, on the same mixtures)
STREAM_CHECKPOINT ?= $(SHIPPED_CHECKPOINT)
export-stream: install-full
	@$(call RESTORE,$(BAND_RUN))
	$(PY) -m training.export_stream --run $(BAND_RUN) --checkpoint $(STREAM_CHECKPOINT) --out models/denoiser-stream.onnx

evaluate-stream: install-full
	$(PY) -m training.evaluate --data $(BUILD)/dataset --model models/denoiser-stream.onnx --out $(BUILD)/eval/stream \
		--compare models/denoiser.onnx --peers none --model-card models/denoiser-stream.md --write-metadata
	mkdir -p models/evaluation/stream
	cp $(BUILD)/eval/stream/report.json $(BUILD)/eval/stream/report.md $(BUILD)/eval/stream/spectrogram.png models/evaluation/stream/

# 72: the whole reproduction (dataset, training, export, evaluation) must stay under 90 min;
# the model card states what it took (at 60 it took 72.3 min, hence the 12 more)
TRAIN_MINUTES ?= 72
# the seed comparison gets the same training time as the default model
SEED_MINUTES ?= $(TRAIN_MINUTES)
SEED_WIDTH ?= 0.25

train: install-full
	$(PY) -m training.train --data $(BUILD)/dataset --preset default --out $(BUILD)/runs/default --time-budget-minutes $(TRAIN_MINUTES)

train-seed: install-full
	$(PY) -m training.train --data $(BUILD)/dataset --preset seed --width $(SEED_WIDTH) --out $(BUILD)/runs/seed --time-budget-minutes $(SEED_MINUTES)

export: install-full
	$(PY) -m training.export --run $(BUILD)/runs/default --out models/denoiser.onnx

export-seed: install-full
	$(PY) -m training.export --run $(BUILD)/runs/seed --out models/seed.onnx

# the model that the shipped one replaced, read from git at the last commit that served it, and
# scored side by side with the seed
PREVIOUS_MODEL_REV ?= d15225d5d130dae2e7a62f1c11dcd6c883ee5079
PREVIOUS_MODEL := $(BUILD)/previous/$(PREVIOUS_MODEL_REV).onnx
$(PREVIOUS_MODEL):
	mkdir -p $(@D)
	git show $(PREVIOUS_MODEL_REV):models/denoiser.onnx > $@.tmp && mv $@.tmp $@

evaluate: install-full $(PREVIOUS_MODEL)
	$(PY) -m training.evaluate --data $(BUILD)/dataset --model models/denoiser.onnx --out $(BUILD)/eval/default \
		--compare $(PREVIOUS_MODEL) --compare models/seed.onnx --model-card models/README.md --write-metadata
	mkdir -p models/evaluation
	cp $(BUILD)/eval/default/report.json $(BUILD)/eval/default/report.md $(BUILD)/eval/default/spectrogram.png models/evaluation/

evaluate-seed: install-full
	$(PY) -m training.evaluate --data $(BUILD)/dataset --model models/seed.onnx --out $(BUILD)/eval/seed --peers none --write-metadata
	mkdir -p models/evaluation/seed
	cp $(BUILD)/eval/seed/report.json $(BUILD)/eval/seed/report.md $(BUILD)/eval/seed/spectrogram.png models/evaluation/seed/

benchmark: $(VENV)/.bench-installed
	$(PY) -m service.benchmark

# the image's pinned dependencies: requirements/service.lock, compiled from pyproject.toml's
# [project] dependencies (not the extras) for the image's Python 3.11 on linux x86_64, with
# hashes. Existing pins are kept where they still fit; `make lock LOCK_OPTS=--upgrade` moves them on.
LOCK_OPTS ?=
.PHONY: lock loadtest footprint container-footprint
lock: | $(VENV)/bin/python
	$(PIP) install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		--generate-hashes --custom-compile-command 'make lock' $(LOCK_OPTS) -o requirements/service.lock

# closed-loop clients on 127.0.0.1 against `python -m service`: throughput, p50/p99, statuses, RSS;
# LOADTEST_OPTS="--soak 10000 --long-upload" adds the memory soak and one 10-minute upload
LOADTEST_OPTS ?=
loadtest: install-full
	$(PY) -m service.loadtest $(LOADTEST_OPTS)

# start to /ready and idle RSS of `python -m service` here (127.0.0.1 only)
footprint: install-service
	$(PY) -m service.footprint --local

# build and smoke-test the image with podman, then print its size over the base, start to
# /ready and idle RSS (root; see the header of the script)
CONTAINER_SMOKE ?= ../shared/tools/container-smoke.sh
container-footprint: | $(VENV)/bin/python
	$(CONTAINER_SMOKE) . '$(PY) -m service.footprint --container'

# the shipped model: the band network's long run (resumable), its best-quality checkpoint
# exported and quantised as models/denoiser.onnx, then the evaluation that writes its card
reproduce: dataset dataset-band train-ship export-band evaluate train-band export-stream evaluate-stream

# every run of the shipped model's stages and teachers is restored, so that the model file
# records what each of them trained (the model card's training time)
SHIP_CHAIN = $(DF_RUN) $(TEACHER_RUN) $(OUTCTX_RUN) $(OUTCTX_FT_RUN) $(SHIP_RUN)
# the exported float file is then quantised to int8 at the named nodes (NAMED_INT8_NODES)
SHIP_FLOAT := $(BUILD)/ship/denoiser-float.onnx
SHIP_QUANTIZE_OPTS ?= --nodes $(NAMED_INT8_NODES)
export-band: install-full
	@for run in $(SHIP_CHAIN); do $(call RESTORE,$$run) || exit 1; done
	$(PY) -m training.export --run $(SHIP_RUN) --checkpoint $(SHIPPED_CHECKPOINT) --out $(SHIP_FLOAT)
	$(PY) -m training.quantize --model $(SHIP_FLOAT) --data $(BAND_DATASET) --out models/denoiser.onnx $(SHIP_QUANTIZE_OPTS)

# the first generation (the default preset, 72 minutes), shipped until 2026-12-03
reproduce-gen1: dataset train export evaluate

reproduce-seed: dataset train-seed export-seed evaluate-seed

# what was tried, from the runs themselves: their records are kept in docs/runs so the
# report survives build/ (sweep runs, shipped runs)
training-report: install-full
	$(PY) -m training.compare_runs --archive docs/runs $(wildcard $(BUILD)/sweep/*/) $(wildcard $(BUILD)/runs/*/) $(wildcard $(RUNS)/*/) \
		--title "Training runs behind the shipped models" --out docs/training-report.md

clean:
	rm -rf $(VENV) $(BUILD) .pytest_cache
