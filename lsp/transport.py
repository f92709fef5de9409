"""A hardened JSON-RPC reader for stdio and TCP, replacing pygls' read loop.

pygls' own loop trusts the `Content-Length` header, answers nothing to a request whose
params do not parse (the client then waits forever) and can be wedged by a huge length.
Here:
- headers are parsed leniently (any case, junk before them is skipped), a missing, negative
  or absurd length drops that header block and the reader looks for the next one;
- a body that is not JSON (e.g. the declared length was too long and swallowed the next
  message) is searched for the next `Content-Length:` and reading resumes from there;
- bodies are read in chunks (no allocation of the declared size up front) and capped;
- a request whose params fail to parse is answered with InvalidParams, anything the server
  cannot handle is logged; none of it ends the loop. End of input ends it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from lsprotocol import types

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024 * 1024  # a 20 MB document with escapes fits; anything larger is refused
MAX_HEADER = 16 * 1024
_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*(-?\d+)", re.IGNORECASE)
_HEADER_END = re.compile(rb"\r\n\r\n|\n\n")
_MARK = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)


class Framer:
    """Bytes in, message bodies out. Pure: no I/O, so it is easy to test."""

    def __init__(self, max_body: int = MAX_BODY) -> None:
        self.buf = bytearray()
        self.length: int | None = None
        self.max_body = max_body
        self.errors: list[str] = []

    def feed(self, data: bytes) -> None:
        self.buf += data

    def pushback(self, data: bytes) -> None:
        self.buf[0:0] = data

    def bodies(self) -> Iterator[bytes]:
        while True:
            if self.length is None:
                m = _HEADER_END.search(self.buf)
                if m is None:
                    if len(self.buf) > MAX_HEADER:
                        # No header end in sight: keep only from the last length marker on.
                        marks = list(_MARK.finditer(self.buf))
                        keep = marks[-1].start() if marks else len(self.buf) - 64
                        self.errors.append("oversized header skipped")
                        del self.buf[:keep]
                    return
                header = bytes(self.buf[: m.start()])
                del self.buf[: m.end()]
                found = _LENGTH.findall(header)
                if not found:
                    if header.strip():
                        self.errors.append("header without Content-Length")
                    continue
                n = int(found[-1])
                if n <= 0 or n > self.max_body:
                    self.errors.append(f"bad Content-Length {n}")
                    continue
                self.length = n
            if len(self.buf) < self.length:
                return
            body = bytes(self.buf[: self.length])
            del self.buf[: self.length]
            self.length = None
            yield body


def decode(body: bytes) -> Any:
    """Body -> JSON value; raises ValueError."""
    return json.loads(body.decode("utf-8", errors="replace"))


def resync_point(body: bytes) -> int | None:
    """Where the next message header starts inside a body that did not parse."""
    m = _MARK.search(body, 1)
    return m.start() if m else None


def dispatch(protocol: Any, message: Any) -> None:
    """Hand one decoded JSON value to a pygls protocol, answering what pygls would not."""
    if not isinstance(message, dict):
        log.warning("ignoring a JSON-RPC message that is not an object")
        return
    msg_id = message.get("id")
    is_request = "method" in message and "id" in message
    if is_request and (not isinstance(msg_id, (int, str)) or isinstance(msg_id, bool)):
        log.warning("ignoring a request with an invalid id")
        return
    if message.get("jsonrpc") != "2.0" or ("method" in message and not isinstance(message["method"], str)):
        if is_request:
            _error(protocol, msg_id, types.ErrorCodes.InvalidRequest, "invalid JSON-RPC 2.0 request")
        return
    method = message.get("method")
    if method is not None and getattr(protocol, "_workspace", True) is None and method not in (types.INITIALIZE, types.EXIT):
        if is_request:
            _error(protocol, msg_id, types.ErrorCodes.ServerNotInitialized, "server not initialized")
        return
    try:
        structured = protocol.structure_message(message)
    except Exception as exc:  # JsonRpcInvalidParams / JsonRpcInternalError from pygls
        if is_request:
            if _known(protocol, method):
                _error(protocol, msg_id, types.ErrorCodes.InvalidParams, f"invalid params for {method}")
            else:
                _error(protocol, msg_id, types.ErrorCodes.MethodNotFound, f"unknown method {method}")
        log.warning("unparseable message: %s", exc.__class__.__name__)
        return
    try:
        protocol.handle_message(structured)
    except SystemExit:
        raise
    except Exception:
        log.exception("failed to handle a message")
        if is_request:
            _error(protocol, msg_id, types.ErrorCodes.InternalError, "internal error")


def _known(protocol: Any, method: str) -> bool:
    try:
        protocol._get_handler(method)
    except Exception:  # noqa: BLE001 - JsonRpcMethodNotFound
        return method in types.METHOD_TO_TYPES
    return True


def _error(protocol: Any, msg_id: Any, code: int, text: str) -> None:
    try:
        protocol._send_response(msg_id, None, types.ResponseError(code=int(code), message=text))
    except Exception:
        log.exception("could not send an error response")
