"""Keras networks. Every network maps ``(batch, freq, time, 1)`` normalised features to
the same shape (a mask or clean features) and is fully convolutional along time."""
