"""The keep-alive HTTP/1.1 client loop both HTTP benches drive their servers with.

Raw asyncio streams rather than an HTTP library: the client must cost far less than the server
it measures, on the same 2 cores.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


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
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if is_error(status):
                errors.append(status)
    finally:
        writer.close()
