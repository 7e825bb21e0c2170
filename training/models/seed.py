"""The reference ("seed") recipe: a plain Conv2D encoder-decoder on dB magnitudes.

Layer for layer as specified: three Conv2D(3x3, relu)+BatchNorm+MaxPool(2)+Dropout(0.1)
blocks (64, 128, 256 filters, L2 5e-4), a 512-filter bottleneck conv, three
Conv2DTranspose(stride 2)+BN+Dropout blocks (256, 128, 64) and a sigmoid Conv2D(1).
``width`` scales every filter count so the recipe can be trained on a small CPU.
It pools time by 8, so legal frame counts are multiples of 8.
"""

from __future__ import annotations

import keras
from keras import layers, regularizers

FRAME_MULTIPLE = 8


def _filters(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def build_seed(n_freq: int = 600, width: float = 1.0, l2: float = 5e-4, dropout: float = 0.1) -> keras.Model:
    """Build the seed network for ``n_freq`` bins (must divide by 8) and any frame count."""
    if n_freq % FRAME_MULTIPLE:
        raise ValueError(f"seed needs n_freq divisible by {FRAME_MULTIPLE}, got {n_freq}")
    reg = regularizers.L2(l2)
    inputs = keras.Input(shape=(n_freq, None, 1), name="features")
    x = inputs
    for i, f in enumerate((64, 128, 256)):
        x = layers.Conv2D(_filters(f, width), 3, padding="same", activation="relu", kernel_regularizer=reg, name=f"enc{i}_conv")(x)
        x = layers.BatchNormalization(name=f"enc{i}_bn")(x)
        x = layers.MaxPooling2D(2, name=f"enc{i}_pool")(x)
        x = layers.Dropout(dropout, name=f"enc{i}_drop")(x)
    x = layers.Conv2D(_filters(512, width), 3, padding="same", activation="relu", kernel_regularizer=reg, name="bottleneck")(x)
    for i, f in enumerate((256, 128, 64)):
        x = layers.Conv2DTranspose(_filters(f, width), 3, strides=2, padding="same", activation="relu", kernel_regularizer=reg, name=f"dec{i}_deconv")(x)
        x = layers.BatchNormalization(name=f"dec{i}_bn")(x)
        x = layers.Dropout(dropout, name=f"dec{i}_drop")(x)
    outputs = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="output")(x)
    return keras.Model(inputs, outputs, name="seed")
