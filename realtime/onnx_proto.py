"""The few fields of ONNX's protobuf messages the engine edits, read and written without the onnx package.

The runtime install has protobuf (onnxruntime needs it) but not onnx, whose import costs about a second
here (its ml_dtypes dependency). Protobuf's wire format names fields by number, so message types that
declare only the fields below, under ONNX's numbers (onnx/onnx.proto), parse an ONNX file and write it
back whole: every field they do not declare (weights, attributes, opsets, metadata, shapes) is kept as an
unknown field, byte for byte, and copied with its message.
"""

from __future__ import annotations

from functools import cache
from typing import Any

PACKAGE = "rt_enhance_onnx_subset"

# message: (field, number, scalar type or message name, repeated)
FIELDS: dict[str, list[tuple[str, int, str, bool]]] = {
    "Model": [("graph", 7, "Graph", False)],
    "Graph": [
        ("node", 1, "Node", True),
        ("initializer", 5, "Tensor", True),
        ("input", 11, "ValueInfo", True),
        ("output", 12, "ValueInfo", True),
        ("value_info", 13, "ValueInfo", True),
    ],
    "Node": [("input", 1, "string", True), ("output", 2, "string", True), ("op_type", 4, "string", False)],
    "ValueInfo": [("name", 1, "string", False), ("type", 2, "Type", False)],
    "Type": [("tensor_type", 1, "TensorType", False)],
    "TensorType": [("elem_type", 1, "int32", False)],
    "Tensor": [("name", 8, "string", False)],
}

#: ONNX element types by onnxruntime's type strings (``tensor(float)``...).
ELEMENT_TYPES = {"float": 1, "uint8": 2, "int8": 3, "int32": 6, "int64": 7, "bool": 9, "float16": 10, "double": 11}


@cache
def messages() -> dict[str, Any]:
    """The message classes of :data:`FIELDS`, by name (``messages()["Model"].FromString(data)``)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    FieldProto = descriptor_pb2.FieldDescriptorProto
    scalars = {"string": FieldProto.TYPE_STRING, "int32": FieldProto.TYPE_INT32}
    file = descriptor_pb2.FileDescriptorProto(name=f"{PACKAGE}.proto", package=PACKAGE, syntax="proto3")
    for name, fields in FIELDS.items():
        message = file.message_type.add(name=name)
        for field, number, kind, repeated in fields:
            label = FieldProto.LABEL_REPEATED if repeated else FieldProto.LABEL_OPTIONAL
            if kind in scalars:
                message.field.add(name=field, number=number, type=scalars[kind], label=label)
            else:
                message.field.add(name=field, number=number, type=FieldProto.TYPE_MESSAGE, label=label, type_name=f".{PACKAGE}.{kind}")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}")) for name in FIELDS}


def load(data: bytes) -> Any:
    """An ONNX model's bytes as a ``Model`` message."""
    return messages()["Model"].FromString(data)


def value_info(name: str, ort_type: str | None = None) -> Any:
    """A graph input or output named ``name``; typed where ``ort_type`` (``tensor(float)``...) is given
    (onnxruntime infers the type of an untyped output, and needs that of an input)."""
    info = messages()["ValueInfo"](name=name)
    if ort_type is not None:
        element = ort_type.removeprefix("tensor(").removesuffix(")")
        if element not in ELEMENT_TYPES:
            raise ValueError(f"tensor {name!r} has type {ort_type}, which a pipeline stage cannot hand over")
        info.type.tensor_type.elem_type = ELEMENT_TYPES[element]
    return info
