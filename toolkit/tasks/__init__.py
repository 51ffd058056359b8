"""LightningModules that train models built from :mod:`toolkit.nn`; all run under ``recur fit``.

* :class:`toolkit.tasks.seq.SeqTask`: sequence classification / regression (adding problem,
  sequential and permuted MNIST).
"""
