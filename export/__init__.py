"""rt-enhance export package: torch model -> checked, self-describing ONNX file (``rt-export``).

Its names load on first use, so ``rt-export`` can tell a user without torch which extra to
install before anything imports torch.
"""

import importlib

_HOME = {
    "ExportError": "errors",
    "TASKS": "metadata",
    "EngineDefaults": "metadata",
    "file_sha256": "metadata",
    "model_info": "metadata",
    "ExportReport": "pipeline",
    "export_model": "pipeline",
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"rt_enhance.export.{_HOME[name]}"), name)
    raise AttributeError(f"module 'rt_enhance.export' has no attribute {name!r}")
