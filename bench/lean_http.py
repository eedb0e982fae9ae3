"""A lean HTTP/1.1 client for the bench's hot requests: prebuilt bytes over keep-alive gevent sockets.

Locust's FastHttpSession spends several times the server's own cost on each request (URL and
header objects, cookie jar, retries, response objects, the stats event). On the bench's one load
core that made the load generator, not the server, set the pace of every phase, and the server
then paid more per request than a busy one would. The hot requests (the purchase, the /result
long-poll, the sale page, /healthz) go through this client instead: the same bytes on the wire,
a fraction of the client's CPU. Plain http only (the bench and a local deployment); `for_host`
gives None for anything else, and the caller falls back to Locust's client.
"""
from __future__ import annotations

import time
from urllib.parse import urlsplit

import gevent.lock
from gevent import socket

READ_CHUNK = 65536
HEADER_END = b"\r\n\r\n"


class ServerClosed(ConnectionError):
    """The server closed the connection before a whole response arrived."""


class LeanHttp:
    """Keep-alive connections to one host, at most `size` at once (like FastHttpUser's concurrency)."""

    def __init__(self, host: str, port: int, size: int = 64, timeout_s: float = 60.0) -> None:
        self.address = (host, port)
        self.host_line = f"Host: {host}:{port}\r\n".encode()
        self.timeout_s = timeout_s
        self.idle: list[socket.socket] = []
        self.slots = gevent.lock.BoundedSemaphore(size)

    @classmethod
    def for_host(cls, base_url: str, size: int = 64) -> LeanHttp | None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname or (url.path not in ("", "/")):
            return None
        return cls(url.hostname, url.port or 80, size)

    def request(self, method: bytes, path: str, headers: bytes = b"", body: bytes = b"") -> tuple[int, bytes, float]:
        """(status, body, milliseconds); `headers` are whole `Name: value\\r\\n` lines. Raises OSError."""
        head = b"%s %s HTTP/1.1\r\n%s%s" % (method, path.encode(), self.host_line, headers)
        if body or method == b"POST":
            head += b"Content-Length: %d\r\n" % len(body)
        data = head + b"\r\n" + body
        with self.slots:
            started = time.perf_counter()
            for attempt in (1, 2):
                reused = bool(self.idle)
                sock = self.idle.pop() if reused else self._connect()
                try:
                    sock.sendall(data)
                    status, payload, keep = self._read(sock)
                except (OSError, ServerClosed):
                    sock.close()
                    if reused and attempt == 1:  # a keep-alive connection the server had closed:
                        self.close()  # the others idle as long are as stale; send it on a new one
                        continue
                    raise
                if keep:
                    self.idle.append(sock)
                else:
                    sock.close()
                return status, payload, (time.perf_counter() - started) * 1000
        raise AssertionError("unreachable")

    def warm(self, connections: int) -> None:
        """Open connections ahead, as a browser that loaded the page holds a few open to the host."""
        for _ in range(max(0, connections - len(self.idle))):
            self.idle.append(self._connect())

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=self.timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _read(self, sock: socket.socket) -> tuple[int, bytes, bool]:
        buffer = b""
        while (end := buffer.find(HEADER_END)) < 0:
            buffer += self._recv(sock)
        lines = buffer[:end].split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, keep = -1, False, not lines[0].startswith(b"HTTP/1.0")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep = value.strip().lower() != b"close"
        rest = buffer[end + 4:]
        if chunked:
            return status, self._read_chunked(sock, rest), keep
        if length < 0:  # no length: the body runs to the close
            while chunk := sock.recv(READ_CHUNK):
                rest += chunk
            return status, rest, False
        while len(rest) < length:
            rest += self._recv(sock)
        return status, rest[:length], keep

    def _read_chunked(self, sock: socket.socket, rest: bytes) -> bytes:
        body = b""
        while True:
            while (end := rest.find(b"\r\n")) < 0:
                rest += self._recv(sock)
            size = int(rest[:end].split(b";")[0], 16)
            rest = rest[end + 2:]
            while len(rest) < size + 2:
                rest += self._recv(sock)
            if size == 0:
                return body
            body, rest = body + rest[:size], rest[size + 2:]

    @staticmethod
    def _recv(sock: socket.socket) -> bytes:
        chunk = sock.recv(READ_CHUNK)
        if not chunk:
            raise ServerClosed("the server closed the connection")
        return chunk
