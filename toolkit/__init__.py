"""recur: a speech and language toolkit built around long-memory recurrent networks."""

__version__ = "0.1.0"
