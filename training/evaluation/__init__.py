"""Evaluation of an exported denoiser against the noisy input and the peers people use.

``python -m training.evaluate`` is the entry point; the pieces live here:
:mod:`.metrics` (SI-SDR, PESQ-WB, STOI, DNSMOS P.835 via :mod:`.dnsmos`, the seed's spectrogram MSE), :mod:`.systems`
(the model through the service's code path, and the peer denoisers with their delay
measured and undone), :mod:`.data` (the dataset builder's test split, or a folder of
noisy/clean pairs), :mod:`.report` (JSON, Markdown, figure, examples) and :mod:`.card`
(the model card, generated from the report and the model's metadata).
"""
