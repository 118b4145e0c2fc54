"""The keep-alive HTTP/1.1 client loop the HTTP benches drive their servers with.

Raw asyncio streams rather than an HTTP library: the client must cost far less than the server
it measures, on the same 2 cores.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int]:
    """Read one response (Content-Length or chunked body) off a keep-alive connection: (status, body bytes)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n"):
        low = line[:18].lower()
        if low[:15] == b"content-length:":
            length = int(line[15:])
            break
        if low == b"transfer-encoding:" and b"chunked" in line.lower():
            chunked = True
    if length:
        await reader.readexactly(length)
    elif chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            length += size
            if size == 0:
                break
    return status, length


async def keepalive_client(host: str, port: int, requests: list[bytes], deadline: float,
                           latencies: list[float], errors: list[int], offset: int, *,
                           max_requests: int | None = None,
                           is_error: Callable[[int], bool] = lambda status: status >= 400) -> None:
    """Send `requests` round-robin from `offset` on one connection until `deadline` (or until
    `latencies` holds `max_requests`), recording each latency and each status `is_error` flags."""
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    n = len(requests)
    try:
        while time.perf_counter() < deadline and (max_requests is None or len(latencies) < max_requests):
            req = requests[i % n]
            i += 1
            t0 = time.perf_counter()
            writer.write(req)
            status, _ = await read_response(reader)
            latencies.append(time.perf_counter() - t0)
            if is_error(status):
                errors.append(status)
    finally:
        writer.close()
