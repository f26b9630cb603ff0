"""ONNX files with their metadata: what a deployment needs to know travels inside the graph (``metadata_props``).

Read and written here with a few lines of protobuf wire format, so that neither the ``onnx`` package nor torch is
needed to run an exported model.
"""

from __future__ import annotations

import json
from typing import Any

METADATA_FIELD = 14  # ModelProto.metadata_props: repeated StringStringEntryProto {key = 1, value = 2}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def with_metadata(graph: bytes, metadata: dict[str, Any]) -> bytes:
    """``graph`` (a serialised ModelProto) with ``metadata`` appended as ``metadata_props`` (values as JSON text
    unless they are strings): protobuf concatenates repeated fields, so appending is a valid message."""
    entries = b"".join(
        _field(
            METADATA_FIELD, _field(1, key.encode()) + _field(2, (v if isinstance(v, str) else json.dumps(v)).encode())
        )
        for key, v in metadata.items()
    )
    return graph + entries


def read_metadata(graph: bytes) -> dict[str, str]:
    """The ``metadata_props`` of a serialised ModelProto, as strings (only the top-level fields are walked)."""
    metadata: dict[str, str] = {}
    at = 0
    while at < len(graph):
        tag, at = _read_varint(graph, at)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, at = _read_varint(graph, at)
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        elif wire == 2:
            length, at = _read_varint(graph, at)
            if number == METADATA_FIELD:
                entry, pair, inner = graph[at : at + length], {}, 0
                while inner < len(entry):
                    inner_tag, inner = _read_varint(entry, inner)
                    size, inner = _read_varint(entry, inner)
                    pair[inner_tag >> 3] = entry[inner : inner + size].decode()
                    inner += size
                metadata[pair.get(1, "")] = pair.get(2, "")
            at += length
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    return metadata
