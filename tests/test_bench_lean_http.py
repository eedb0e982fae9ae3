"""The bench's lean HTTP client: the bytes it sends, keep-alive reuse, a keep-alive connection the
server closed (sent again once, on a new one), chunked bodies and `Connection: close`, against a
real HTTP/1.1 server in a thread of its own."""
from __future__ import annotations

import http.server
import threading

import pytest

from bench.lean_http import LeanHttp


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, dict, bytes, int]] = []  # (method, path, headers, body, client port)

    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Handler.seen.append((self.command, self.path, dict(self.headers), body, self.client_address[1]))
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        payload = b'{"echo":"%s"}' % body
        self.send_response(409 if self.path == "/refuse" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer


@pytest.fixture
def server():
    Handler.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def lean(server):
    client = LeanHttp.for_host(f"http://127.0.0.1:{server.server_port}")
    yield client
    client.close()


def test_requests_reuse_one_keep_alive_connection_and_carry_headers_and_body(server, lean):
    status, body, ms = lean.request(b"POST", "/buy?x=1", b"Cookie: fs_session=abc\r\n", b'{"a":1}')
    assert (status, body) == (200, b'{"echo":"{"a":1}"}') and ms >= 0
    status, body, _ = lean.request(b"GET", "/refuse")
    assert (status, body) == (409, b'{"echo":""}')
    (m1, p1, h1, b1, c1), (m2, p2, h2, b2, c2) = Handler.seen
    assert (m1, p1, b1, h1["Cookie"], h1["Content-Length"]) == ("POST", "/buy?x=1", b'{"a":1}', "fs_session=abc", "7")
    assert h1["Host"] == f"127.0.0.1:{server.server_port}"
    assert (m2, p2, b2) == ("GET", "/refuse", b"") and "Content-Length" not in h2
    assert c1 == c2  # the same connection


def test_a_closed_keep_alive_connection_is_replaced_and_the_request_sent_once_more(lean):
    lean.warm(2)
    assert len(lean.idle) == 2
    for sock in lean.idle:  # the server's side went away while they sat idle
        sock.shutdown(2)
    assert lean.request(b"GET", "/one")[0] == 200
    assert [p for _, p, *_ in Handler.seen] == ["/one"]


def test_chunked_bodies_and_connection_close(lean):
    assert lean.request(b"GET", "/chunked")[:2] == (200, b"hello chunked world")
    assert lean.request(b"GET", "/close")[:2] == (200, b'{"echo":""}')
    assert lean.idle == []  # not kept after Connection: close
    assert lean.request(b"GET", "/after")[0] == 200
    assert len({c for *_, c in Handler.seen[1:]}) == 2


def test_only_plain_http_hosts_get_a_lean_client():
    assert LeanHttp.for_host("https://shop.example") is None
    assert LeanHttp.for_host("http://shop.example/prefix") is None
    assert LeanHttp.for_host("http://127.0.0.1:8080").address == ("127.0.0.1", 8080)
