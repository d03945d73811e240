"""/healthz (the process answers) and /readyz (the stores answer and the projections run).

/readyz runs its checks side by side, each bounded by READINESS_CHECK_TIMEOUT_MS, so the
probe answers within about that long whatever is down, and its JSON body names each check
with what it found. Thresholds for the projections are settings
(docs/decisions/0033-readiness-checks.md says why they are lenient by default).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.settings import Settings
from reads.projection_state import STATE, lease_live, parked_counts
from workers.projectors import PROJECTORS
from writes.db import current_revision, migration_head

Document = dict[str, Any]
MAX_DETAIL = 300


class NotReady(Exception):
    """A check's finding that makes the API not ready, in words for the operator."""


class Probes:
    """What /readyz and /metrics look at: the API's own clients, built in the lifespan."""

    def __init__(
        self, engine: AsyncEngine, db: AsyncDatabase[Document], redis: Redis, settings: Settings
    ) -> None:
        self.engine = engine
        self.db = db
        self.redis = redis
        self.timeout_s = settings.readiness_check_timeout_ms / 1000
        self.lease_ttl_ms = settings.projection_lease_ttl_ms
        self._max_parked = settings.readiness_max_parked_events
        self._stopped_grace_s = settings.readiness_stopped_grace_s
        self._head = migration_head()
        # When this process first saw each projection without a live worker.
        self._stopped_since: dict[str, float] = {}

    async def readiness(self) -> tuple[bool, Document]:
        checks: dict[str, Callable[[], Awaitable[str]]] = {
            "postgres": self._postgres,
            "mongodb": self._mongodb,
            "redis": self._redis,
            "projections": self._projections,
        }
        results = await asyncio.gather(*(self._bounded(check) for check in checks.values()))
        report = {
            name: {"ok": ok, "detail": detail}
            for name, (ok, detail) in zip(checks, results, strict=True)
        }
        ready = all(ok for ok, _ in results)
        return ready, {"status": "ready" if ready else "not_ready", "checks": report}

    async def _bounded(self, check: Callable[[], Awaitable[str]]) -> tuple[bool, str]:
        try:
            async with asyncio.timeout(self.timeout_s):
                return True, await check()
        except NotReady as exc:
            return False, str(exc)
        except TimeoutError:
            return False, f"no answer within {self.timeout_s * 1000:.0f} ms"
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"[:MAX_DETAIL]

    async def _postgres(self) -> str:
        current = await current_revision(self.engine)
        if current != self._head:
            raise NotReady(
                f"at migration {current or 'none'}, the code needs {self._head}: run `shop migrate`"
            )
        return f"at migration head {current}"

    async def _mongodb(self) -> str:
        await self.db.command("ping")
        return "answers"

    async def _redis(self) -> str:
        await self.redis.ping()
        return "answers"

    async def _projections(self) -> str:
        now, clock = datetime.now(UTC), time.monotonic()
        states = {doc["_id"]: doc async for doc in self.db[STATE].find()}
        parked = await parked_counts(self.db)
        problems = []
        for name in PROJECTORS:
            doc = states.get(name) or {}
            if lease_live(doc, now):
                self._stopped_since.pop(name, None)
            else:
                stopped_s = clock - self._stopped_since.setdefault(name, clock)
                if stopped_s >= self._stopped_grace_s:
                    problems.append(f"{name} stopped: no live worker for {stopped_s:.0f} s")
            count = parked.get((name, doc.get("generation", 0)), 0)
            if count > self._max_parked:
                problems.append(f"{name} parked: {count} parked events")
        if problems:
            raise NotReady("; ".join(problems))
        return "running"


async def healthz(request: Request) -> JSONResponse:
    """The process is alive and its event loop answers; nothing else is checked."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    probes: Probes | None = getattr(request.app.state, "probes", None)
    if probes is None:
        return JSONResponse({"status": "starting", "checks": {}}, status_code=503)
    ready, body = await probes.readiness()
    return JSONResponse(body, status_code=200 if ready else 503)


def health_routes() -> list[Route]:
    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
