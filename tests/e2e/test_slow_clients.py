"""Bounded request-read time (issue 9, item 7): a body that never arrives in full gets a 408.

A real `mobip serve` on loopback with a 1-second body deadline; raw sockets send their headers
(Content-Length: 1000) and a few bytes of body, then nothing. Each must get 408 with return code
6002 and then see the connection closed; before, all of them stayed open for good. What uvicorn
itself does with a client that never finishes its headers is in docs/operations.md.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from e2e.serving import Served, serve

SOCKETS = 50
# How long a client waits for its answer: a generous bound, not a measure (the deadline is 1 s).
WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("slow") / "var", body_read_timeout_seconds="1") as served:
        yield served


def unfinished(port: int, path: str, content_type: str) -> socket.socket:
    """A connection that sent its headers and 10 of the 1000 body bytes it announced."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_SECONDS)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        "Content-Length: 1000\r\n\r\nitem_name=".encode()
    )
    return sock


def answer_then_close(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read until the server closes the connection: status, headers, body."""
    received = b""
    with sock:
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


def test_api_calls_whose_body_never_arrives_get_408_and_are_closed(server: Served) -> None:
    sockets = [
        unfinished(server.port, "/api/2.0/mobip/login", "application/x-www-form-urlencoded")
        for _ in range(SOCKETS)
    ]
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(answer_then_close, sockets))
    for status, headers, body in answers:
        assert status == 408
        assert headers["connection"] == "close"
        reply = json.loads(body)
        assert reply["return_code"] == "6002"
        assert "1 seconds" in reply["return_message"]


def test_a_checkout_form_whose_body_never_arrives_gets_408(server: Served) -> None:
    """The hosted page's form POST reads its body with the same deadline."""
    token = "ck_" + "A" * 32  # the form of a checkout token: read before any database work
    sock = unfinished(server.port, f"/pay/{token}", "application/x-www-form-urlencoded")
    status, headers, body = answer_then_close(sock)
    assert status == 408
    assert headers["connection"] == "close"
    assert b"<html" in body.lower()


def test_a_body_that_arrives_in_time_is_read(server: Served) -> None:
    """Control: the same connection finishing its body gets an ordinary answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_SECONDS) as sock:
        body = b"access_token=mbt_unknown"
        sock.sendall(
            b"POST /api/2.0/mobip/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        status, _, reply = answer_then_close(sock)
    assert status == 401
    assert json.loads(reply)["return_code"] == "2002"
