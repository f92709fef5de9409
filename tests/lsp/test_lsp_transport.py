"""lsp.transport: framing that survives bad headers, wrong lengths and garbage."""

import json

from lsp.transport import Framer, decode, resync_point


def frame(obj) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def drain(f: Framer) -> list:
    out = []
    for body in f.bodies():
        try:
            out.append(decode(body))
        except ValueError:
            at = resync_point(body)
            if at is not None:
                f.pushback(body[at:])
    return out


def test_messages_split_across_chunks_byte_by_byte():
    data = frame({"a": 1}) + frame({"b": "é😀"})
    f = Framer()
    got = []
    for i in range(len(data)):
        f.feed(data[i: i + 1])
        got += drain(f)
    assert got == [{"a": 1}, {"b": "é😀"}]


def test_bad_headers_are_skipped():
    f = Framer(max_body=1000)
    f.feed(b"Content-Length: abc\r\n\r\n" + b"Content-Length: -5\r\n\r\n" + b"Content-Length: 99999999\r\n\r\n"
           + b"X-Other: 1\r\n\r\n" + b"garbage\r\ncontent-length:   7\r\nContent-Type: x\r\n\r\n" + b'{"x":1}')
    assert drain(f) == [{"x": 1}]
    assert any("bad Content-Length" in e for e in f.errors)


def test_too_long_length_swallowing_the_next_message_resyncs():
    good = frame({"id": 2})
    f = Framer()
    f.feed(b'Content-Length: 60\r\n\r\n{"id": 1}' + good + b" " * 60 + frame({"id": 3}))
    assert drain(f) == [{"id": 2}, {"id": 3}]


def test_too_short_length_recovers_at_the_next_header():
    f = Framer()
    f.feed(b'Content-Length: 3\r\n\r\n{"id": 1}' + frame({"id": 2}))
    assert drain(f) == [{"id": 2}]


def test_invalid_utf8_is_replaced_not_fatal():
    body = b'{"t": "\xff\xfe"}'
    f = Framer()
    f.feed(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert drain(f) == [{"t": "\ufffd\ufffd"}]


def test_endless_junk_without_header_end_is_bounded():
    f = Framer()
    f.feed(b"x" * 100_000)
    assert drain(f) == []
    assert len(f.buf) < 1000
    f.feed(frame({"ok": True}))
    assert drain(f) == [{"ok": True}]


def test_protocol_stream_survives_fd1_being_swapped(tmp_path):
    """llama-cpp-python's quiet model load dup2()s /dev/null over fd 1 (in the loading thread) while
    the server keeps answering: replies written then must still reach the client, and stray prints
    must go to stderr, never into the protocol stream."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import os, sys\n"
        "from lsp.__main__ import private_stdout\n"
        "out = private_stdout()\n"
        "print('stray print')\n"
        "saved = os.dup(1); null = os.open(os.devnull, os.O_WRONLY); os.dup2(null, 1)\n"
        "out.write(b'Content-Length: 2\\r\\n\\r\\n{}')\n"
        "os.write(1, b'native noise')\n"
        "os.dup2(saved, 1)\n"
        "out.write(b'Content-Length: 2\\r\\n\\r\\n[]')\n"
    )
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=root, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"Content-Length: 2\r\n\r\n{}Content-Length: 2\r\n\r\n[]"
    assert b"stray print" in res.stderr
