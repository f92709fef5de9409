"""`copilot-lsp`: the language server, over stdio (default) or TCP.

    copilot-lsp [--model NAME_OR_DIR] [--tcp HOST:PORT] [--log-level LEVEL] [--log-file PATH]

Logs go to stderr (or --log-file); stdout carries only the protocol.
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="copilot-lsp", description="Copilot language server (LSP over stdio or TCP).")
    ap.add_argument("--model", help="base model: packaged name or folder (default: settings.model)")
    ap.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    ap.add_argument("--stdio", action="store_true", help="serve over stdio (the default)")
    ap.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    ap.add_argument("--log-file", help="write logs here instead of stderr")
    args = ap.parse_args(argv)

    from copilot.core.paths import set_offline_env

    set_offline_env()
    handler = logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stderr)
    logging.basicConfig(level=args.log_level, handlers=[handler], format="%(asctime)s %(name)s %(levelname)s %(message)s")

    host = port = None
    if args.tcp:
        host, _, p = args.tcp.rpartition(":")
        if not host or not p.isdigit():
            print(f"copilot-lsp: --tcp needs HOST:PORT, got {args.tcp!r}", file=sys.stderr)
            return 2
        port = int(p)

    from lsp.server import build_server

    server = build_server(model_override=args.model)
    if port is not None:
        server.start_tcp(host, port)
        return 0
    return server.start_io(sys.stdin.buffer, private_stdout())


def private_stdout():
    """The protocol's own handle on the real stdout; fd 1 and sys.stdout then point at stderr.

    Native libraries write to fd 1 or even swap it: llama-cpp-python's quiet model load dup2()s
    /dev/null over fds 1 and 2 while it runs (in the engine's loading thread), which would swallow
    any reply written meanwhile. With the protocol on a private descriptor, nothing another
    thread does to fd 1 can corrupt or lose a message."""
    import os

    sys.stdout.flush()
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr  # a stray print() goes to the log, not into the protocol stream
    return os.fdopen(fd, "wb", buffering=0)


if __name__ == "__main__":
    sys.exit(main())
