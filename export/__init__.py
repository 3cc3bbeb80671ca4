"""rt-enhance export package: torch model -> checked, self-describing ONNX file (``rt-export``)."""

from rt_enhance.export.errors import ExportError
from rt_enhance.export.metadata import TASKS, EngineDefaults, file_sha256, model_info
from rt_enhance.export.pipeline import ExportReport, export_model

__all__ = ["TASKS", "EngineDefaults", "ExportError", "ExportReport", "export_model", "file_sha256", "model_info"]
