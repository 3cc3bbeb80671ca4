"""onnxruntime execution providers by the names ``--provider`` takes.

A module of its own, with no imports, so that ``rt-enhance --help`` can list them without
importing numpy or onnxruntime.
"""

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
