"""A real HTTP server on loopback that records what it receives (callbacks, outbound tests).

Replies are programmable per path (status, headers, body); every request is recorded with its
headers, query and body. With a signing secret it verifies Standard Webhooks signatures using the
``standardwebhooks`` library and records whether each one verified.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    verified: bool | None
    connection: tuple[str, int] = ("", 0)  # the sender's address and port: one per connection

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies: dict[str, list[Reply]] = {}  # path -> replies, the last one repeats
        self.secret: str | None = None
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.server: ThreadingHTTPServer | None = None
        # When set, replies wait until the gate opens (a handler "in hand" for shutdown tests).
        self.gate: threading.Event | None = None
        self.scheme = "http"
        self.closed: list[tuple[str, int]] = []  # connections the sender closed, in order

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    def url(self, path: str = "/callback") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def reply(self, path: str, *replies: Reply) -> None:
        with self.lock:
            self.replies[path] = list(replies)

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        """Block until ``count`` requests arrived (an event, not a timing assumption)."""
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"got {len(self.requests)} requests, expected {count}")
            return list(self.requests)

    def wait_closed(self, count: int, timeout: float = 30) -> list[tuple[str, int]]:
        """Block until the senders closed ``count`` connections (an event, not a sleep)."""
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.closed) >= count, timeout):
                raise AssertionError(f"{len(self.closed)} connections closed, expected {count}")
            return list(self.closed)

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes) -> Reply:
        parts = urlsplit(handler.path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        verified = None
        if self.secret is not None:
            try:
                Webhook(self.secret).verify(body, headers, json_parse=False)
                verified = True
            except WebhookVerificationError:
                verified = False
        received = Received(
            handler.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            headers,
            body,
            verified,
            handler.client_address,
        )
        with self.changed:
            self.requests.append(received)
            self.changed.notify_all()
            queue = self.replies.get(parts.path) or [Reply()]
            return queue.pop(0) if len(queue) > 1 else queue[0]


@contextmanager
def running_receiver(tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1; HTTPS with ``tls`` (a server context, see tests/tls_support)."""
    receiver = Receiver()
    if tls is not None:
        receiver.scheme = "https"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if len(body) < length:
                # The sender died mid-request: a real server would drop it, so do we.
                self.close_connection = True
                return
            reply = receiver._record(self, body)
            if receiver.gate is not None:
                receiver.gate.wait(60)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = _serve

        def finish(self) -> None:
            super().finish()
            with receiver.changed:
                receiver.closed.append(self.client_address)
                receiver.changed.notify_all()

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a sender killed mid-request (crash tests): not the receiver's problem

        def get_request(self) -> tuple[socket.socket, object]:
            sock, address = super().get_request()
            if tls is None:
                return sock, address
            # The handshake runs in the handler's thread: a client refusing our certificate
            # fails there (ignored above), never in the accepting loop.
            return tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
