"""A raw HTTP/1.1 client that streams a chunked body (no Content-Length) and stops as
soon as the server answers: it tells whether a server refused a body while it was still
arriving, or only after reading all of it."""

from __future__ import annotations

import select
import socket
from urllib.parse import urlsplit


def chunked_until_answered(
    url: str, nsid: str, total: int, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """POST ``/xrpc/{nsid}`` with up to ``total`` body bytes in chunks, stopping when the
    server answers; returns the bytes sent by then and the start of the response."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    fields = {"content-type": "application/json", **(headers or {})}
    head = f"POST /xrpc/{nsid} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    head += "Transfer-Encoding: chunked\r\n\r\n"
    sock.sendall(head.encode())
    chunk = b"[" * 16_384
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    try:
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered while the body was still coming
            sock.sendall(frame)
            sent += len(chunk)
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # it stopped reading and closed: the answer is already on its way
    response = b""
    try:
        while b"\r\n\r\n" not in response or len(response) < 200:
            data = sock.recv(65536)
            if not data:
                break
            response += data
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    return sent, response
