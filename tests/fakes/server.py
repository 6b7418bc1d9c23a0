"""An HTTPS server on loopback that hands each request to a ``Service``'s routes.

A ``Service`` holds one service's state and routes (``route(method, pattern, handler)``), records
every request it answers, and can be told to answer the next matching requests with a scripted
fault (``fail(...)``: a 409, a 429 with ``Retry-After``, a 5xx) before its normal answer, and can run a
test's action once a matching request has been answered (``when(...)``: a refusal that begins mid-way).
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from tests.fakes.tls import Certificates


@dataclass
class Request:
    method: str
    path: str  # decoded, without the query
    query: dict[str, str]  # one value per name, decoded
    headers: dict[str, str]  # names in lower case
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)  # the route pattern's named groups

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict or list: sent as JSON; str or bytes: sent as is
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """What a test can assert about a request: the call as the service saw it, and the answer."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern
    reply: Reply
    times: int


def error(status: int, code: str, message: str, headers: dict | None = None) -> Reply:
    """ARM's error body shape (Graph adds innerError; see graph.py)."""
    return Reply(status, {"error": {"code": code, "message": message}}, headers or {})


class Service:
    name = "service"

    def __init__(self):
        self._routes: list[tuple[str, re.Pattern, Callable[[Request], Reply]]] = []
        self._faults: list[_Fault] = []
        self._triggers: list[tuple[str, re.Pattern, Callable[[], None]]] = []
        self.requests: list[Seen] = []
        self._lock = threading.RLock()
        self.base_url = ""  # set when served
        self.time = None  # the stand-ins' shared clock (tests/fakes/cloud.py StandInTime), set when served

    def route(self, method: str, pattern: str, handler: Callable[[Request], Reply]) -> None:
        self._routes.append((method, re.compile(pattern, re.I), handler))

    def fail(self, method: str, pattern: str, reply: Reply, times: int = 1) -> None:
        """Answer the next ``times`` requests matching ``method`` and ``pattern`` with ``reply``."""
        with self._lock:
            self._faults.append(_Fault(method, re.compile(pattern, re.I), reply, times))

    def when(self, method: str, pattern: str, action: Callable[[], None]) -> None:
        """Run ``action()`` once, after the first answered request matching ``method`` and ``pattern``."""
        with self._lock:
            self._triggers.append((method, re.compile(pattern, re.I), action))

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._triggers.clear()
            self.requests.clear()

    def seen(self, method: str | None = None, pattern: str = "") -> list[Seen]:
        found = re.compile(pattern, re.I)
        return [s for s in self.requests if (method is None or s.method == method) and found.search(s.path)]

    def authorize(self, request: Request) -> Reply | None:
        """Services refuse a request without a bearer token, as the real ones do."""
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        return None

    def not_found(self, request: Request) -> Reply:
        return error(404, "NotFound", f"no route for {request.method} {request.path} in the {self.name} stand-in")

    def handle(self, request: Request) -> Reply:
        with self._lock:
            reply = self._handle(request)
            self.requests.append(Seen(request.method, request.path, request.query, request.headers, reply.status))
            for trigger in [t for t in self._triggers if t[0] == request.method and t[1].search(request.path)]:
                self._triggers.remove(trigger)
                trigger[2]()
            return reply

    def _handle(self, request: Request) -> Reply:
        refused = self.authorize(request)
        if refused is not None:
            return refused
        for fault in self._faults:
            if fault.times > 0 and fault.method == request.method and fault.pattern.search(request.path):
                fault.times -= 1
                return fault.reply
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if method == request.method and match:
                request.params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items() if v is not None}
                return handler(request)
        return self.not_found(request)


class FakeServer:
    """Serves one ``Service`` over HTTPS on 127.0.0.1 at a free port."""

    def __init__(self, service: Service, certificates: Certificates):
        self.service = service
        self.certificates = certificates
        handler = _handler_for(service)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificates.cert_file, certificates.key_file)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        service.base_url = self.url
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"fake-{service.name}", daemon=True)

    @property
    def ca_file(self) -> str:
        return str(self.certificates.ca_file)

    def start(self) -> "FakeServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler_for(service: Service):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self):
            parts = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
            request = Request(self.command, urllib.parse.unquote(parts.path), query,
                              {k.lower(): v for k, v in self.headers.items()}, body)
            try:
                reply = service.handle(request)
            except Exception as e:  # noqa: BLE001 - a stand-in bug shows up as a 500 the test will see
                reply = error(500, "StandInError", f"{type(e).__name__}: {e}")
            if isinstance(reply.body, (dict, list)):
                payload = json.dumps(reply.body).encode()
                content_type = "application/json; charset=utf-8"
            else:
                payload = reply.body.encode() if isinstance(reply.body, str) else (reply.body or b"")
                content_type = "text/plain"
            self.send_response(reply.status)
            headers = {"Content-Type": content_type, **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        def log_message(self, *args):  # keep test output clean
            pass

    return Handler
