"""MongoDB wire-protocol framing: read requests, encode replies.

Supports OP_MSG (opcode 2013), which every driver since MongoDB 3.6 uses for
commands, and the legacy OP_QUERY command form (opcode 2004) with its OP_REPLY
(opcode 1), which older drivers send for the first handshake. Compression
(OP_COMPRESSED) is never offered in ``hello``, so clients do not send it.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any

import bson
from bson.codec_options import CodecOptions

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013

HEADER = struct.Struct("<iiii")
MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48_000_000

# OP_MSG flag bits. Bits 0-15 are required bits, and a receiver must reject a
# message that sets one it does not know.
CHECKSUM_PRESENT = 1 << 0
MORE_TO_COME = 1 << 1
EXHAUST_ALLOWED = 1 << 16
KNOWN_REQUIRED_FLAGS = CHECKSUM_PRESENT | MORE_TO_COME

# Datetimes decode as naive UTC, as mongomock stores them. Binary values keep
# their subtype (UUIDs stay bson.Binary), so they are written back byte for byte.
DECODE_OPTIONS = CodecOptions(document_class=dict, tz_aware=False)


class ProtocolError(Exception):
    """A request that breaks the wire protocol. The server closes the connection."""


@dataclass
class Request:
    """One decoded command request."""

    request_id: int
    op_code: int
    body: dict[str, Any]
    more_to_come: bool = False


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    remaining = size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_request(sock: socket.socket) -> Request | None:
    """Read and decode one request, or return None when the peer closed the socket.

    :raises ProtocolError: on a malformed message or an unsupported opcode.
    """
    header = _recv_exactly(sock, HEADER.size)
    if header is None:
        return None
    length, request_id, _response_to, op_code = HEADER.unpack(header)
    if length < HEADER.size or length > MAX_MESSAGE_SIZE:
        raise ProtocolError(f"invalid message length {length}")

    payload = _recv_exactly(sock, length - HEADER.size)
    if payload is None:
        return None

    try:
        if op_code == OP_MSG:
            flags, body = _parse_op_msg(payload)
            return Request(request_id, op_code, body, more_to_come=bool(flags & MORE_TO_COME))
        if op_code == OP_QUERY:
            return Request(request_id, op_code, _parse_op_query(payload))
    except (struct.error, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed message with opcode {op_code}: {exc}") from exc
    raise ProtocolError(f"unsupported opcode {op_code}: only OP_MSG and OP_QUERY commands")


def _read_cstring(data: bytes, offset: int) -> tuple[str, int]:
    end = data.find(b"\x00", offset)
    if end < 0:
        raise ProtocolError("unterminated C string")
    return data[offset:end].decode("utf-8"), end + 1


def _read_document(data: bytes, offset: int) -> tuple[dict[str, Any], int]:
    if offset + 4 > len(data):
        raise ProtocolError("truncated BSON document")
    (size,) = struct.unpack_from("<i", data, offset)
    if size < 5 or offset + size > len(data):
        raise ProtocolError(f"invalid BSON document size {size}")
    try:
        document = bson.decode(data[offset : offset + size], codec_options=DECODE_OPTIONS)
    except bson.errors.InvalidBSON as exc:
        raise ProtocolError(f"invalid BSON: {exc}") from exc
    return document, offset + size


def _parse_op_msg(payload: bytes) -> tuple[int, dict[str, Any]]:
    """Return the flags and the command body, with kind-1 sequences merged in."""
    (flags,) = struct.unpack_from("<I", payload, 0)
    unknown = flags & 0xFFFF & ~KNOWN_REQUIRED_FLAGS
    if unknown:
        raise ProtocolError(f"unsupported required OP_MSG flags 0x{unknown:x}")

    # NOTE: a CRC-32C checksum, when present, is skipped without being checked.
    end = len(payload) - 4 if flags & CHECKSUM_PRESENT else len(payload)
    offset = 4
    body: dict[str, Any] | None = None
    sequences: dict[str, list[dict[str, Any]]] = {}
    while offset < end:
        kind = payload[offset]
        offset += 1
        if kind == 0:
            body, offset = _read_document(payload, offset)
        elif kind == 1:
            (size,) = struct.unpack_from("<i", payload, offset)
            section_end = offset + size
            identifier, cursor = _read_cstring(payload, offset + 4)
            documents = []
            while cursor < section_end:
                document, cursor = _read_document(payload, cursor)
                documents.append(document)
            sequences[identifier] = documents
            offset = section_end
        else:
            raise ProtocolError(f"unsupported OP_MSG section kind {kind}")

    if body is None:
        raise ProtocolError("OP_MSG without a body section")
    body.update(sequences)
    return flags, body


def _parse_op_query(payload: bytes) -> dict[str, Any]:
    """Return the command of a legacy ``<db>.$cmd`` query, with ``$db`` set."""
    full_name, offset = _read_cstring(payload, 4)
    offset += 8  # numberToSkip and numberToReturn
    query, _ = _read_document(payload, offset)

    database, _, collection = full_name.partition(".")
    if collection != "$cmd":
        raise ProtocolError(f"OP_QUERY on {full_name!r}: only commands on <db>.$cmd are supported")

    # Old drivers wrap the command when they add a read preference.
    if "$query" in query:
        query = query["$query"]
    query["$db"] = database
    return query


def encode_reply(request: Request, reply_id: int, document: dict[str, Any]) -> bytes:
    """Encode ``document`` as the reply to ``request`` in the request's protocol."""
    data = bson.encode(document)
    if request.op_code == OP_MSG:
        body = struct.pack("<IB", 0, 0) + data
        op_code = OP_MSG
    else:
        # responseFlags, cursorID, startingFrom, numberReturned
        body = struct.pack("<iqii", 0, 0, 0, 1) + data
        op_code = OP_REPLY
    header = HEADER.pack(HEADER.size + len(body), reply_id, request.request_id, op_code)
    return header + body
