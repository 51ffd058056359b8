"""Synthetic and image-as-sequence datasets for the long-memory benchmarks (no audio, no text).

* :mod:`.adding`: the adding problem (Hochreiter & Schmidhuber 1997), generated from a seed.
* :mod:`.mnist`: pixel-by-pixel and permuted MNIST read from the standard files.

Batches are dicts ``{"x": (B, T, F) float, "y": (B,) target}``, the form
:class:`toolkit.tasks.seq.SeqTask` reads.
"""
