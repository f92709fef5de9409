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

    from copilot.paths import set_offline_env

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
    stdout = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print() must never corrupt the protocol stream
    return server.start_io(sys.stdin.buffer, stdout)


if __name__ == "__main__":
    sys.exit(main())
