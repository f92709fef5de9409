"""workspace/executeCommand `copilot.status` (and window/logMessage on state changes).

Returns the model and its state (loading | ready | failed, with the error), the device, the
adapter and version serving this workspace, the last completion latency, request counters,
the negotiated position encoding, the debounce hint and the server's RSS.
"""

from __future__ import annotations

from typing import Any


def register(server: Any) -> None:
    @server.command("copilot.status")
    def status(ls: Any, *args: Any) -> dict[str, Any]:
        return ls.status()
