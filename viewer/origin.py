"""Only the viewer's own page may drive it: WebSocket upgrades from another site's page are refused.

A browser lets any page open a WebSocket to 127.0.0.1, so without this a page on another site, open
in the same browser, could edit the world and save over --out. Browsers always send the page's
`Origin` with a WebSocket upgrade; we accept it only when it names this server (its port, and its
host: a loopback name, the --host given, or this machine's own names and addresses when serving on
all interfaces). Clients that send no Origin are not browsers (scripts, tests) and are let in.

viser 1.1 offers no hook for this, so the narrowest point is wrapped: while `ViserServer` starts,
`websockets.asyncio.server.serve` (which viser calls once, to listen) is given a `process_request`
that answers a foreign upgrade with 403 before viser's own handler sees it.
"""

from __future__ import annotations

import http
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

LOOPBACK = {"localhost", "127.0.0.1", "::1"}
WILDCARD = {"0.0.0.0", "::", ""}
_lock = threading.Lock()


def allowed_hosts(host: str) -> set[str]:
    """Host names an Origin may carry for a server bound to `host`."""
    hosts = {host.strip("[]").lower()} | LOOPBACK
    if host in WILDCARD:
        name = socket.gethostname()
        hosts |= {name.lower(), socket.getfqdn().lower()}
        try:
            hosts |= {info[4][0] for info in socket.getaddrinfo(name, None)}
        except OSError:
            pass
    return hosts


def origin_allowed(origin: str | None, port: int, hosts: set[str]) -> bool:
    if origin is None:
        return True
    try:
        parts = urlsplit(origin)
        origin_port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and (parts.hostname or "") in hosts and origin_port == port


@contextmanager
def own_origin_only(host: str) -> Iterator[None]:
    """While this block starts a ViserServer on `host`, its WebSocket refuses foreign Origins."""
    import websockets.asyncio.server as ws_server
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    hosts = allowed_hosts(host)
    serve = ws_server.serve

    def guarded_serve(*args, process_request=None, **kwargs):
        def check(connection, request):
            upgrades = [u.lower() for u in request.headers.get_all("Upgrade")]
            if "websocket" in upgrades:
                port = connection.local_address[1]
                origins = request.headers.get_all("Origin")  # a browser sends one; two are refused, not guessed at
                if len(origins) > 1 or not origin_allowed(origins[0] if origins else None, port, hosts):
                    body = b"this viewer accepts connections from its own page only\n"
                    return Response(http.HTTPStatus.FORBIDDEN, "Forbidden",
                                    Headers({"Content-Length": str(len(body))}), body)
            return process_request(connection, request) if process_request is not None else None

        return serve(*args, process_request=check, **kwargs)

    with _lock:  # one server starting at a time: the patch is process-wide while it lasts
        ws_server.serve = guarded_serve
        try:
            yield
        finally:
            ws_server.serve = serve
