"""Throttle counters in Redis, shared by every API process (schema/throttling.py asks).

Fixed windows: a quota's key counts attempts and expires `window` after its first one.
One Lua script checks and counts every quota of an attempt atomically, in one round
trip: parallel attempts cannot all read "4 of 5" and all go through.
"""

from __future__ import annotations

import logging
import math
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from schema.throttling import Quota, Refusal

log = logging.getLogger(__name__)

# KEYS: one counter per quota. ARGV: limit and window (ms) of each quota, in turn.
# Returns {0, 0} when the attempt was counted, else {n, ms}: quota n (1-based) is spent
# for ms more milliseconds. A refused attempt is counted nowhere.
_ATTEMPT = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[2 * i - 1]) then
    local left = redis.call('PTTL', key)
    if left < 0 then
      redis.call('PEXPIRE', key, ARGV[2 * i])
      left = tonumber(ARGV[2 * i])
    end
    return {i, left}
  end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, 0, 'PX', ARGV[2 * i], 'NX')
  redis.call('INCR', key)
end
return {0, 0}
"""

# While Redis is unreachable, say so at most this often (an attack would flood the log).
OUTAGE_LOG_INTERVAL_S = 60.0


class RedisThrottle:
    """Fails open: while Redis is unreachable every attempt is admitted (and logged).

    docs/decisions/0024-throttles.md says why: logging in must survive a Redis outage as
    everything else does, and the per-process bound on password hashing still holds.
    """

    def __init__(self, redis: Redis, redis_prefix: str) -> None:
        self._script = redis.register_script(_ATTEMPT)
        self._prefix = f"{redis_prefix}:throttle"
        self._last_outage_log = -math.inf

    async def attempt(self, quotas: list[Quota]) -> Refusal | None:
        keys = [f"{self._prefix}:{quota.key}" for quota in quotas]
        args: list[int] = []
        for quota in quotas:
            args += [quota.limit, quota.window_seconds * 1000]
        try:
            spent, left_ms = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._log_outage(exc)
            return None
        if spent == 0:
            return None
        return Refusal(quotas[int(spent) - 1], max(1, math.ceil(int(left_ms) / 1000)))

    def _log_outage(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_outage_log >= OUTAGE_LOG_INTERVAL_S:
            self._last_outage_log = now
            log.warning("throttles admit every attempt while Redis is unreachable: %s", exc)
