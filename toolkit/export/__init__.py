"""Export for deployment: a trained CTC model as ONNX plus plain files (``recur export``), run by
:mod:`toolkit.deploy` without PyTorch.

* :func:`export_model` writes the folder (``toolkit.export.folder``);
* :func:`to_onnx` makes the graph alone (``toolkit.export.onnx``);
* :data:`EXPORTABLE`: the layer families that export, and how their recurrence is expressed in ONNX.
"""

from .folder import ExportResult, export_model, resolve_task
from .graph import DEFAULT_INDRNN_FORM, EXPORTABLE, INDRNN_FORMS
from .onnx import OPSET, to_onnx

__all__ = [
    "DEFAULT_INDRNN_FORM",
    "EXPORTABLE",
    "INDRNN_FORMS",
    "OPSET",
    "ExportResult",
    "export_model",
    "resolve_task",
    "to_onnx",
]
