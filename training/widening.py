"""Starting a band network with wider encoder levels from a narrower one's weights.

When only ``channels`` past the first level differ, and each is at least the source's, every
weight of the 2-D path (and the bottleneck projections that flatten and unflatten the deepest
maps) holds the source's weights in the positions of the source's channels. The new channels'
weights keep the wider network's own initial values, except those through which a source
channel would read a new one, which start at zero. The wider network then computes exactly
what the source computes, and the new channels start learning from the first step.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

#: the dense layers that flatten the deepest maps into the bottleneck and unflatten them again
FLATTENING = {"bn_in": "input", "bn_out": "output"}


def _kernel_axes(layer: keras.layers.Layer, ndim: int) -> tuple[int, int]:
    """(input, output) channel axes of ``layer``'s kernel; one axis for a depthwise kernel."""
    if isinstance(layer, (layers.DepthwiseConv1D, layers.DepthwiseConv2D)):
        return ndim - 2, ndim - 2
    if isinstance(layer, (layers.Conv1DTranspose, layers.Conv2DTranspose)):
        return ndim - 1, ndim - 2
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Dense)):
        return ndim - 2, ndim - 1
    raise ValueError(f"{layer.name}: a {type(layer).__name__} cannot be widened")


def _source_positions(source_size: int, size: int, freq: int | None) -> np.ndarray:
    """Where the source's entries of one axis sit in the wider axis: the leading ones, or, on a
    flattened (frequency, channel) axis of ``freq`` frequencies, each frequency's leading channels."""
    if freq is None:
        return np.arange(source_size)
    if source_size % freq or size % freq:
        raise ValueError(f"a flattened axis of {source_size} -> {size} entries over {freq} frequencies")
    return (np.arange(freq)[:, None] * (size // freq) + np.arange(source_size // freq)[None, :]).ravel()


def widen(layer: keras.layers.Layer, source: list[np.ndarray], fresh: list[np.ndarray], freq: int) -> list[np.ndarray]:
    """``layer``'s weights holding the narrower ``source`` weights (kernel, then bias) inside its
    own initial ``fresh`` ones, as the module describes; ``freq`` is the deepest maps' frequency
    count (the flattened axes of :data:`FLATTENING`)."""
    if len(source) != len(fresh) or any(s.ndim != f.ndim or any(a > b for a, b in zip(s.shape, f.shape))
                                        for s, f in zip(source, fresh)):
        raise ValueError(f"{layer.name}: {[s.shape for s in source]} do not fit inside {[f.shape for f in fresh]}")
    in_axis, out_axis = _kernel_axes(layer, fresh[0].ndim)
    flat = FLATTENING.get(layer.name)
    widened = []
    for k, (src, new) in enumerate(zip(source, fresh)):
        axes = {in_axis: "input", out_axis: "output"} if k == 0 else {0: "output"}
        grown = [a for a in range(new.ndim) if src.shape[a] != new.shape[a]]
        if any(a not in axes or (layer.name in FLATTENING and axes[a] != flat) or
               (isinstance(layer, layers.Dense) and layer.name not in FLATTENING) for a in grown):
            raise ValueError(f"{layer.name}: only channel axes of the 2-D path can grow, not {src.shape} -> {new.shape}")
        where = [_source_positions(src.shape[a], new.shape[a], freq if axes.get(a) == flat and flat else None)
                 for a in range(new.ndim)]
        out = new.copy()
        out[np.ix_(*where)] = src
        if k == 0 and in_axis != out_axis and src.shape[in_axis] != new.shape[in_axis]:
            # a source channel must not read a new one
            reads_new = np.setdiff1d(np.arange(new.shape[in_axis]), where[in_axis])
            index = [np.arange(n) for n in new.shape]
            index[in_axis], index[out_axis] = reads_new, where[out_axis]
            out[np.ix_(*index)] = 0.0
        widened.append(out)
    return widened


def widening_frequencies(net: keras.Model, source: keras.Model) -> int | None:
    """The deepest maps' frequency count where ``net`` can start from ``source`` by
    :func:`widen` (the same band geometry and first level, no level narrower), else None."""
    try:
        mine, theirs = net.get_layer("unflatten_freq").target_shape, source.get_layer("unflatten_freq").target_shape
        first = [net.get_layer(n).weights[0].shape for n in ("enc0_conv", "mask_bands")]
        first_source = [source.get_layer(n).weights[0].shape for n in ("enc0_conv", "mask_bands")]
    except ValueError:
        return None
    if mine[1] != theirs[1] or mine[2] < theirs[2] or first != first_source:
        return None
    return int(mine[1])
