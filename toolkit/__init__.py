"""recur: a speech and language toolkit built around long-memory recurrent networks.

``toolkit.load(path)`` returns a trained model (see ``toolkit.api``); it is imported on first use, so
``import toolkit.nn`` stays free of Lightning and the decoders.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "load":
        from toolkit.api import load

        return load
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
