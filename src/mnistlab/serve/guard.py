"""ASGI middleware that makes `mnistlab serve` safe to leave running: who may ask, how much, and what comes back.

- `RequestGuard` (outermost): refuses a `Host` that is not an allowed name (a DNS-rebinding page names its own
  domain), refuses a state-changing request from another site (a cross-origin form post needs no preflight, so
  `Origin` and `Sec-Fetch-Site` are checked), answers HEAD wherever GET exists, adds `X-Content-Type-Options:
  nosniff` and a default content security policy to every response, and ends quietly when a client disconnects
  before its body arrives (uvicorn would log a traceback for each).
- `BodySizeLimit`: 413 for bodies over the limit, from Content-Length or counted while streaming.

Errors have the API's shape, `{"error": "..."}`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")  # names of this machine that no other site can claim
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")  # methods that change nothing; others must come from an allowed origin
DEFAULT_SECURITY_HEADERS = {  # added unless the response sets its own
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",  # JSON: no resources, no framing
}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The API's error shape: {"error": message}."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def host_name(value: str) -> str:
    """`Host` header or URL authority -> the lower-case name without port or brackets: "[::1]:8000" -> "::1"."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    name = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    return name.rstrip(".")


class RequestGuard:
    """Host and Origin checks, HEAD as GET without a body, security headers, quiet client disconnects."""

    def __init__(self, app, allowed_hosts: list[str] | tuple[str, ...]):
        self.app = app
        self.allowed_hosts = {host_name(host) for host in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        refusal = self.refusal(scope["method"], headers)
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}

        async def guarded_send(message):
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                extra = [(key.encode(), value.encode()) for key, value in DEFAULT_SECURITY_HEADERS.items()
                         if key.encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            elif message["type"] == "http.response.body" and head:
                if message.get("more_body"):
                    return  # HEAD: the GET's headers (Content-Length included), never its body
                message = {**message, "body": b""}
            await send(message)

        if refusal:
            await error_response(*refusal)(scope, receive, guarded_send)
            return
        try:
            await self.app(scope, receive, guarded_send)
        except ClientDisconnect:
            return  # the client went away mid-body: nobody is left to answer, nothing worth a traceback

    def refusal(self, method: str, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, message) when the request must be refused, else None."""
        host = host_name(headers.get("host", ""))
        if host not in self.allowed_hosts:
            return 400, (f"Host {headers.get('host', '(none)')[:80]!r} is not served here; use one of "
                         f"{', '.join(sorted(self.allowed_hosts))}, or start serve with --allowed-host {host[:80] or 'NAME'}")
        if method in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and host_name(urlsplit(origin).netloc) not in self.allowed_hosts:
            return 403, (f"cross-site request refused: Origin {origin[:80]!r} is not an allowed host; "
                         "post from this server's own page, or from a script that sends no Origin")
        if headers.get("sec-fetch-site") == "cross-site":
            return 403, "cross-site request refused (Sec-Fetch-Site: cross-site); post from this server's own page"
        return None


class BodySizeLimit:
    """413 for bodies over `max_body_bytes`, from Content-Length or counted while streaming."""

    def __init__(self, app, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await error_response(400, f"Content-Length {declared[:20]!r} is not a byte count")(scope, receive, send)
                return
            if int(declared) > self.max_body_bytes:
                await error_response(413, self.too_large(int(declared)))(scope, receive, send)
                return
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:  # chunked uploads have no Content-Length: stop reading here
                    raise HTTPException(413, self.too_large(received, at_least=True))
            return message

        await self.app(scope, counting_receive, send)

    def too_large(self, size: int, at_least: bool = False) -> str:
        return (f"request body is {'over ' if at_least else ''}{size:,} bytes, over the limit of "
                f"{self.max_body_bytes:,}; send a smaller image (a 280x280 PNG is about 10 kB)")
