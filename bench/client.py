"""The load generator: asyncio + httpx, a bounded number of requests and seconds.

Each measurement runs ``concurrency`` clients that send requests back to back until
``max_requests`` were sent or ``max_seconds`` passed. A request's latency is from
sending it to having read the whole body. The server reports the SQL queries it ran
(``X-Bench-Queries``, from ``bench.middleware``).
"""

import asyncio
import inspect
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class Sample:
    latency_ms: float
    status: int
    queries: int | None
    size: int
    outcome: str = ""


@dataclass
class Result:
    name: str
    concurrency: int
    elapsed: float
    samples: list[Sample] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.samples)

    def _latencies(self) -> list[float]:
        return sorted(s.latency_ms for s in self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self._latencies()) if self.samples else float("nan")

    @property
    def p95(self) -> float:
        values = self._latencies()
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]

    @property
    def rps(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    @property
    def queries(self) -> int | None:
        counts = [s.queries for s in self.samples if s.queries is not None]
        return int(statistics.median(counts)) if counts else None

    @property
    def max_queries(self) -> int | None:
        counts = [s.queries for s in self.samples if s.queries is not None]
        return max(counts) if counts else None

    @property
    def size(self) -> int:
        return (
            int(statistics.median(s.size for s in self.samples)) if self.samples else 0
        )

    @property
    def statuses(self) -> Counter:
        return Counter(s.status for s in self.samples)

    @property
    def outcomes(self) -> Counter:
        return Counter(s.outcome or str(s.status) for s in self.samples)


#: ``(client index, request number, http client) -> (method, url, headers, body)``
#: or None when this client has nothing left to send; it may be a coroutine (to
#: make untimed preparatory requests, e.g. a preview before a confirm). ``body`` is
#: form data (dict), raw bytes or None.
RequestFactory = Callable[[int, int, httpx.AsyncClient], object]
#: Classifies a response (e.g. "refunded", "refused: over refund").
Classifier = Callable[[httpx.Response], str]


async def _run(
    base_url: str,
    name: str,
    make: RequestFactory,
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    classify: Classifier | None,
) -> Result:
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency
    )
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=60, follow_redirects=False
    ) as client:
        result = Result(name, concurrency, 0.0)
        sent = 0
        deadline = time.perf_counter() + max_seconds
        started = time.perf_counter()

        async def worker(index: int) -> None:
            nonlocal sent
            number = 0
            while sent < max_requests and time.perf_counter() < deadline:
                sent += 1  # counted before any await, so the bound holds
                spec = make(index, number, client)
                if inspect.isawaitable(spec):
                    spec = await spec
                if spec is None:
                    return
                number += 1
                method, url, headers, body = spec
                if isinstance(body, bytes):
                    kwargs = {"content": body}
                else:
                    kwargs = {"data": body}
                t0 = time.perf_counter()
                response = await client.request(method, url, headers=headers, **kwargs)
                body = response.content
                latency = (time.perf_counter() - t0) * 1000
                queries = response.headers.get("X-Bench-Queries")
                result.samples.append(
                    Sample(
                        latency,
                        response.status_code,
                        int(queries) if queries else None,
                        len(body),
                        classify(response) if classify else "",
                    )
                )

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        result.elapsed = time.perf_counter() - started
        return result


def measure(
    base_url: str,
    name: str,
    make: RequestFactory,
    *,
    concurrency: int = 1,
    max_requests: int = 200,
    max_seconds: float = 2.0,
    warmup: int = 0,
    warmup_concurrency: int = 3,
    classify: Classifier | None = None,
) -> Result:
    """Run one measurement and return it. First ``warmup`` unrecorded requests from
    ``warmup_concurrency`` clients, so that every server worker has served the page
    (loaded its templates, locale data...) before anything is recorded."""
    if warmup:
        asyncio.run(
            _run(
                base_url,
                name,
                make,
                concurrency=warmup_concurrency,
                max_requests=warmup,
                max_seconds=max_seconds,
                classify=None,
            )
        )
    return asyncio.run(
        _run(
            base_url,
            name,
            make,
            concurrency=concurrency,
            max_requests=max_requests,
            max_seconds=max_seconds,
            classify=classify,
        )
    )


async def wait_until_up(url: str, seconds: float = 30) -> None:
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.perf_counter() > deadline:
                raise RuntimeError(f"The server did not answer at {url}")
            await asyncio.sleep(0.2)


def wait_for_server(url: str, seconds: float = 30) -> None:
    asyncio.run(wait_until_up(url, seconds))
