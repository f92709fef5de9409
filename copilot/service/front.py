"""The service's front door: an OpenAI-compatible HTTP endpoint in front of the engines (aiohttp).

- Every route but `GET /health` needs `Authorization: Bearer <team key>` (copilot.service.keys).
- `POST /v1/completions`: `model` is one of the key's team adapters (by name; the active version is
  served) or the base ("base", "", or the base model's name). Any other adapter: 403, never served.
  The body goes to a live engine (copilot.service.fleet) with the adapter selected the engine's way;
  `stream: true` is passed through as server-sent events; a client that goes away closes the upstream
  connection, which stops the generation in the engine.
- Limits per key: requests per minute (token bucket), body size, `max_tokens`.
- `GET /v1/models`, `GET /v1/adapters` (the team's versions, with the archive's sha256),
  `GET /v1/adapters/{name}/{version}/archive` (for `copilot adapters pull`).
- Nothing of a request's content is logged: one line per request with the team, route, status,
  adapter and milliseconds (and only when `log_requests` is on).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from copilot.service.fleet import EngineDown, Fleet, UnknownAdapter
from copilot.service.keys import KeyStore, TeamKey

log = logging.getLogger("copilot.service")

BASE_ALIASES = ("", "base")


@dataclass
class Limits:
    requests_per_minute: int = 1200  # an editor sends one request per pause, more while typing fast
    max_body_kb: int = 256
    max_tokens: int = 1024

    def merged(self, overrides: dict) -> Limits:
        return Limits(**{k: int(overrides.get(k, getattr(self, k))) for k in self.__dataclass_fields__})


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class FrontDoor:
    fleet: Fleet
    keys: KeyStore
    registry: Any
    base: dict  # {"name": ..., "sha256": ...}
    limits: Limits = field(default_factory=Limits)
    upstream_timeout_s: float = 300.0
    connect_timeout_s: float = 2.0
    log_requests: bool = True
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=lambda: {"requests": 0, "refused": 0, "cancelled": 0, "engine_down": 0})

    # ------------------------------------------------------------------ app
    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.limits.max_body_kb * 1024 * 4,
                              middlewares=[self._errors, self._auth])
        app.add_routes([
            web.get("/health", self.health),
            web.post("/v1/completions", self.completions),
            web.get("/v1/models", self.models),
            web.get("/v1/adapters", self.adapters),
            web.get("/v1/adapters/{name}/{version}/archive", self.archive),
        ])
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, app: web.Application) -> None:
        self._session = ClientSession(timeout=ClientTimeout(total=self.upstream_timeout_s, connect=self.connect_timeout_s,
                                                            sock_connect=self.connect_timeout_s))

    async def _close(self, app: web.Application) -> None:
        await self._session.close()

    # ------------------------------------------------------------------ middlewares
    @web.middleware
    async def _errors(self, request: web.Request, handler):
        t0 = time.perf_counter()
        status, team = 500, "-"
        try:
            resp = await handler(request)
            status = resp.status
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away
            self.counters["cancelled"] += 1
            raise
        except Exception as exc:
            log.exception("internal error on %s", request.path)
            status = 500
            return _error(500, f"internal error: {exc.__class__.__name__}", "internal_error")
        finally:
            key = request.get("key")
            team = key.team if key else team
            if self.log_requests and request.path != "/health":
                log.info("%s %s team=%s status=%s adapter=%s %.0f ms", request.method, request.path, team, status,
                         request.get("served", "-"), (time.perf_counter() - t0) * 1000)

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        if request.path == "/health":
            return await handler(request)
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        key = self.keys.check(token)
        if key is None:
            self.counters["refused"] += 1
            return _error(401, "missing, unknown or revoked API key (Authorization: Bearer <team key>)", "invalid_api_key")
        request["key"] = key
        limits = self.limits.merged(key.limits)
        if not self._take(key, limits):
            self.counters["refused"] += 1
            return _error(429, f"rate limit: {limits.requests_per_minute} requests per minute for team {key.team}",
                          "rate_limited", headers={"Retry-After": "1"})
        request["limits"] = limits
        return await handler(request)

    def _take(self, key: TeamKey, limits: Limits) -> bool:
        rate = limits.requests_per_minute / 60.0
        now = time.monotonic()
        b = self._buckets.get(key.id) or _Bucket(tokens=float(limits.requests_per_minute) / 6 + 1, at=now)
        b.tokens = min(limits.requests_per_minute / 6 + 1, b.tokens + (now - b.at) * rate)  # bursts of 10 s
        b.at = now
        self._buckets[key.id] = b
        if b.tokens < 1:
            return False
        b.tokens -= 1
        return True

    # ------------------------------------------------------------------ routes
    async def health(self, request: web.Request) -> web.Response:
        state = self.fleet.state()
        up = any(r["alive"] for r in state["replicas"])
        return web.json_response({"status": "ok" if up else "engine_down", "base": self.base.get("name"), **state},
                                 status=200 if up else 503)

    def _adapter_for(self, model: Any, key: TeamKey) -> str | None:
        if not isinstance(model, str) and model is not None:
            raise _HTTP(400, "`model` must be a string: an adapter name of your team, or \"base\"", "invalid_request")
        model = (model or "").strip()
        if model in BASE_ALIASES or model == self.base.get("name"):
            return None
        name = model.split("@", 1)[0]
        if not key.allows(name):
            self.counters["refused"] += 1
            raise _HTTP(403, f"team {key.team} may not use adapter {name!r}", "forbidden")
        return name

    async def completions(self, request: web.Request) -> web.StreamResponse:
        key: TeamKey = request["key"]
        limits: Limits = request["limits"]
        raw = await request.read()
        if len(raw) > limits.max_body_kb * 1024:
            return _error(413, f"request body over {limits.max_body_kb} KB", "too_large")
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"the body is not JSON: {exc}", "invalid_request")
        if not isinstance(body, dict) or "prompt" not in body:
            return _error(400, "expected a JSON object with `prompt` (text or token ids) and `model`", "invalid_request")
        try:
            name = self._adapter_for(body.get("model"), key)
        except _HTTP as exc:
            return exc.response()
        try:
            max_tokens = int(body.get("max_tokens", 16))
        except (TypeError, ValueError):
            return _error(400, "`max_tokens` must be an integer", "invalid_request")
        if max_tokens > limits.max_tokens:
            return _error(400, f"max_tokens {max_tokens} is over this key's limit {limits.max_tokens}", "invalid_request")
        self.counters["requests"] += 1
        try:
            with self.fleet.lease(name) as (engine, served):
                request["served"] = served or "base"
                upstream = engine.upstream_body(dict(body), served)
                return await self._forward(request, engine, upstream, served, bool(body.get("stream")))
        except UnknownAdapter as exc:
            return _error(404, str(exc), "model_not_found")
        except EngineDown as exc:
            self.counters["engine_down"] += 1
            return _error(503, str(exc), "engine_unavailable", headers={"Retry-After": "2"})

    async def _forward(self, request: web.Request, engine, body: dict, served: str | None, stream: bool) -> web.StreamResponse:
        headers = {"X-Copilot-Served": served or "base"}
        resp: web.StreamResponse | None = None
        try:
            async with self._session.post(f"{engine.base_url}/v1/completions", json=body) as up:
                if not stream or up.status != 200:
                    data = await up.read()
                    return web.Response(body=data, status=up.status, headers=headers,
                                        content_type=up.content_type or "application/json")
                resp = web.StreamResponse(status=200, headers={**headers, "Content-Type": "text/event-stream",
                                                                "Cache-Control": "no-cache"})
                await resp.prepare(request)
                async for chunk in up.content.iter_any():
                    try:
                        await resp.write(chunk)
                    except (ConnectionError, ClientError):
                        # Our client left: leaving this block closes the engine's connection mid-body,
                        # which stops its generation.
                        self.counters["cancelled"] += 1
                        return resp
                await resp.write_eof()
                return resp
        except (TimeoutError, ClientError, ConnectionError) as exc:
            self.fleet.mark_down(engine)
            if resp is not None:  # the stream had started: end it; the client sees a short completion
                return resp
            raise EngineDown(f"the inference engine did not answer ({exc.__class__.__name__}); "
                             f"it is being restarted") from None

    async def models(self, request: web.Request) -> web.Response:
        key: TeamKey = request["key"]
        served = self.fleet.served()
        data = [{"id": self.base.get("name", "base"), "object": "model", "owned_by": "base"}]
        data += [{"id": n, "object": "model", "owned_by": key.team, "version": served[n]} for n in key.adapters if n in served]
        return web.json_response({"object": "list", "data": data})

    async def adapters(self, request: web.Request) -> web.Response:
        from copilot.adapters.archive import pack

        key: TeamKey = request["key"]
        out = []
        for name in key.adapters:
            active = self.registry.active(name)
            for v in self.registry.versions(name):
                man = self.registry.manifest(name, v)
                _, digest = await asyncio.to_thread(pack, self.registry.version_dir(name, v), name, v)
                out.append({"name": name, "version": v, "active": v == active, "status": man.status,
                            "archive_sha256": digest, "manifest": man.to_dict()})
        return web.json_response({"base": self.base, "adapters": out})

    async def archive(self, request: web.Request) -> web.StreamResponse:
        from copilot.adapters.archive import pack

        key: TeamKey = request["key"]
        name, version = request.match_info["name"], request.match_info["version"]
        if not key.allows(name):
            return _error(403, f"team {key.team} may not use adapter {name!r}", "forbidden")
        if not version.isdigit() or int(version) not in self.registry.versions(name):
            return _error(404, f"no adapter version {name}@{version}", "model_not_found")
        path, digest = await asyncio.to_thread(pack, self.registry.version_dir(name, int(version)), name, int(version))
        return web.FileResponse(path, headers={"X-Content-SHA256": digest, "Content-Type": "application/x-tar"})


class _HTTP(Exception):
    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.kind = status, kind

    def response(self) -> web.Response:
        return _error(self.status, str(self), self.kind)


def _error(status: int, message: str, kind: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "code": status}}, status=status,
                             headers=headers)


async def serve(front: FrontDoor, host: str, port: int, ssl_context=None, ready=None) -> None:
    """Run the front door until cancelled. `ready(port)` is called once it listens."""
    runner = web.AppRunner(front.app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    if ready:
        sockets = runner.addresses
        ready(sockets[0][1] if sockets else port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
