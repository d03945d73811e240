"""The load generator: a separate process that drives HTTP keep-alive connections.

    echo SPEC_JSON | python -m bench.http_load

SPEC: {"host", "port", "concurrency", "duration_s", "warmup_s", "check": "graphql"|"status",
"requests": [{"method", "path", "body", "headers"}...]}. Each connection sends the
requests in turn, one at a time (a closed loop, as browsers and wrk do), for
warm-up plus duration; only responses completed after the warm-up count. Prints one
JSON object: requests, errors, seconds, rps, p50_ms, p99_ms, max_ms, error_sample, and
completed (every response, warm-up included: what the server's CPU over the whole run paid for).

It is a raw asyncio client over uvloop with prebuilt request bytes and httptools' parser,
so it costs the server's two cores as little as possible; the baseline and the API are
driven by the same client, so its cost weighs on both sides of every ratio.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httptools
import orjson
import uvloop

from bench.stats import percentile


@dataclass
class Tally:
    measure_from: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_sample: str = ""
    # Responses warm-up included: a server's CPU time is read around the whole run.
    completed: int = 0


class _Response:
    """httptools callbacks for one response at a time."""

    def __init__(self) -> None:
        self.body = bytearray()
        self.done = False

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


def build_request(host: str, port: int, request: dict[str, Any]) -> bytes:
    body = request.get("body", "").encode()
    headers = {"Host": f"{host}:{port}", "Content-Length": str(len(body))}
    if body:
        headers["Content-Type"] = "application/json"
    headers |= request.get("headers", {})
    head = f"{request.get('method', 'POST')} {request['path']} HTTP/1.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request_bytes: bytes = head.encode() + b"\r\n" + body
    return request_bytes


async def connection(
    spec: dict[str, Any], requests: list[bytes], offset: int, tally: Tally, until: float
) -> None:
    reader, writer = await asyncio.open_connection(spec["host"], spec["port"])
    graphql = spec.get("check", "graphql") == "graphql"
    n = offset
    try:
        while (started := time.perf_counter()) < until:
            writer.write(requests[n % len(requests)])
            n += 1
            response = _Response()
            parser = httptools.HttpResponseParser(response)
            while not response.done:
                chunk = await reader.read(65536)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                parser.feed_data(chunk)
            finished = time.perf_counter()
            tally.completed += 1
            failed = parser.get_status_code() != 200 or (graphql and b'"errors"' in response.body)
            if started >= tally.measure_from:
                tally.latencies_ms.append((finished - started) * 1000)
                if failed:
                    tally.errors += 1
                    tally.error_sample = tally.error_sample or bytes(response.body[:300]).decode()
    finally:
        writer.close()


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    requests = [build_request(spec["host"], spec["port"], r) for r in spec["requests"]]
    begin = time.perf_counter()
    tally = Tally(measure_from=begin + spec.get("warmup_s", 0.0))
    until = tally.measure_from + spec["duration_s"]
    await asyncio.gather(
        *(connection(spec, requests, i, tally, until) for i in range(spec["concurrency"]))
    )
    return summary(tally, until) | {"completed": tally.completed}


def summary(tally: Tally, until: float) -> dict[str, Any]:
    """The result both load generators print: counts, rate and latency percentiles."""
    seconds = max(time.perf_counter(), until) - tally.measure_from
    latencies = tally.latencies_ms
    return {
        "requests": len(latencies),
        "errors": tally.errors,
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 0.5) if latencies else None,
        "p99_ms": percentile(latencies, 0.99) if latencies else None,
        "max_ms": max(latencies) if latencies else None,
        "error_sample": tally.error_sample,
    }


def main() -> int:
    spec = orjson.loads(sys.stdin.buffer.read())
    result = uvloop.run(drive(spec))
    sys.stdout.buffer.write(orjson.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
