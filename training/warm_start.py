"""Starting a network from another run's trained weights (``training.train --init-weights``).

Weights go across layer by layer, by name. Layers whose names and weight shapes match are
copied. A context block that is separable here (``<block>_dw``, a depthwise convolution, then
``<block>_conv``, a 1x1 one) and full in the source (one ``<block>_conv``) starts as the
separable block closest to the full one: for each input channel, the full kernel's taps by
output channel form a matrix whose leading singular pair gives that channel's depthwise taps
and its row of the 1x1 kernel. A context block whose time padding differs (centred here,
causal in the source) keeps each time tap that reads the same frame offset in both, and the
taps with no counterpart start at zero. Encoder levels past the first may be wider than the
source's (``training.widening``). Any other difference between the two networks is an error.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

from training.presets import get_preset
from training.widening import widen, widening_frequencies


def separable_from_full(kernel: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Depthwise kernel ``(kt, kf, c, 1)`` and bias ``(c,)``, 1x1 kernel ``(1, 1, c, out)`` and bias
    ``(out,)`` whose composition is, per input channel, the best rank-one approximation (least
    squares) of the full kernel ``(kt, kf, c, out)`` with bias ``(out,)``."""
    kt, kf, channels, out = kernel.shape
    depthwise = np.zeros((kt, kf, channels, 1), dtype=kernel.dtype)
    pointwise = np.zeros((1, 1, channels, out), dtype=kernel.dtype)
    for c in range(channels):
        u, s, vt = np.linalg.svd(kernel[:, :, c, :].reshape(kt * kf, out), full_matrices=False)
        scale = np.sqrt(s[0])
        depthwise[:, :, c, 0] = (u[:, 0] * scale).reshape(kt, kf)
        pointwise[0, 0, c, :] = vt[0] * scale
    return depthwise, np.zeros(channels, dtype=kernel.dtype), pointwise, bias.copy()


def _weighted(model: keras.Model) -> dict[str, keras.layers.Layer]:
    return {layer.name: layer for layer in model.layers if layer.weights}


def shift_time_taps(kernel: np.ndarray, taps: int) -> np.ndarray:
    """``kernel`` (time taps first) with tap ``j`` taken from the source's tap ``j + taps``
    (zeros where the source has none)."""
    shifted = np.zeros_like(kernel)
    kt = kernel.shape[0]
    for j in range(max(0, -taps), min(kt, kt - taps)):
        shifted[j] = kernel[j + taps]
    return shifted


def _time_layer(layers: dict[str, keras.layers.Layer], block: str) -> str:
    """The layer of ``block`` whose kernel holds its time taps: the depthwise one if separable."""
    return f"{block}_dw" if f"{block}_dw" in layers else f"{block}_conv"


def _tap_shift(net: keras.Model, source: keras.Model, block: str) -> int:
    """How many time taps context block ``block`` reads later in ``net`` than in ``source``
    (0 where it is not a context block or the paddings agree)."""
    try:
        mine, theirs = net.get_layer(f"{block}_tpad").padding[0][0], source.get_layer(f"{block}_tpad").padding[0][0]
    except ValueError:
        return 0
    dilation = net.get_layer(_time_layer(_weighted(net), block)).dilation_rate[0]
    if (theirs - mine) % dilation:
        raise ValueError(f"{block}: time paddings {theirs} and {mine} differ by a fraction of the dilation {dilation}")
    return (theirs - mine) // dilation


def _source_weights(mine: dict[str, keras.layers.Layer], theirs: dict[str, keras.layers.Layer], net: keras.Model,
                    source: keras.Model, converted: list[str]) -> dict[str, list[np.ndarray]]:
    """The source's weights for each of ``net``'s layers that it has: as they are, time taps
    shifted where a context block's padding differs, and separable pairs from full blocks."""
    weights = {}
    for name in mine:
        block = name.rsplit("_", 1)[0]
        if block in converted and name in (f"{block}_dw", f"{block}_conv"):
            continue
        if name in theirs:
            weights[name] = theirs[name].get_weights()
            if name == _time_layer(mine, block) and (shift := _tap_shift(net, source, block)):
                weights[name][0] = shift_time_taps(weights[name][0], shift)
    for block in converted:
        full_kernel, full_bias = theirs[f"{block}_conv"].get_weights()
        full_kernel = shift_time_taps(full_kernel, _tap_shift(net, source, block))
        dw_kernel, dw_bias, pw_kernel, pw_bias = separable_from_full(full_kernel, full_bias)
        weights[f"{block}_dw"] = [dw_kernel, dw_bias]
        weights[f"{block}_conv"] = [pw_kernel, pw_bias]
    return weights


def transfer_weights(net: keras.Model, source: keras.Model) -> list[str]:
    """Copy ``source``'s weights into ``net`` by layer name, widening them where ``net``'s
    encoder levels past the first are wider (``training.widening``); return the context blocks
    that start from a full source block (see the module's description)."""
    mine, theirs = _weighted(net), _weighted(source)
    converted = sorted(name[: -len("_dw")] for name in mine if name.endswith("_dw") and name not in theirs
                       and f"{name[: -len('_dw')]}_conv" in theirs)
    weights = _source_weights(mine, theirs, net, source, converted)
    freq = widening_frequencies(net, source)
    problems = []
    for name, layer in mine.items():
        if name not in weights:
            problems.append(f"{name}: the source has no such layer")
            continue
        shapes, source_shapes = [tuple(w.shape) for w in layer.weights], [w.shape for w in weights[name]]
        if shapes == source_shapes:
            layer.set_weights(weights[name])
            continue
        try:
            if freq is None:
                raise ValueError("the networks differ in more than the width of their encoder levels past the first")
            layer.set_weights(widen(layer, weights[name], layer.get_weights(), freq))
        except ValueError as error:
            problems.append(f"{name} {shapes}: the source has {source_shapes} ({error})")
    problems += [f"{name}: not in this network" for name in theirs if name not in mine]
    if problems:
        raise ValueError("the source network's weights do not fit this one: " + "; ".join(problems))
    return converted


def source_network(weights: Path) -> keras.Model | None:
    """The untrained network of the run that wrote ``weights`` (from the ``config.json`` beside
    them), or None where there is no such record."""
    config = weights.parent / "config.json"
    if not config.is_file():
        return None
    train = json.loads(config.read_text())["train"]
    preset = get_preset(train["preset"])
    return preset.build(preset.signal, preset.options(train.get("model_options") or {}))


def start_from(net: keras.Model, weights: str | Path) -> list[str]:
    """Load ``weights`` into ``net``: through the network of the run that wrote them and
    :func:`transfer_weights` where that run's record is beside them, else directly (the same
    network). Returns the context blocks started from full ones."""
    weights = Path(weights)
    source = source_network(weights)
    if source is None:
        net.load_weights(weights)
        return []
    source.load_weights(weights)
    return transfer_weights(net, source)
