"""Automatic persisted queries in Redis: every API process shares them, and they are bounded.

A document is kept under its sha256 for `ttl_s` after its last use, and at most
`max_documents` are kept: registering one more drops the least recently used (one Lua
script, so concurrent registrations keep the bound). Redis down: nothing is found and
nothing kept, so clients send their full documents, as they do for any unknown hash.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS: the document's key, the index (a sorted set: key -> last use, in ms).
# ARGV: the document, ttl (s), max documents, now (ms).
_REGISTER = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], KEYS[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #oldest, 2 do redis.call('DEL', oldest[i]) end
end
return 1
"""
# KEYS: the document's key, the index. ARGV: ttl (s), now (ms). Returns the document.
_USE = """
local document = redis.call('GET', KEYS[1])
if document then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[2], 'XX', ARGV[2], KEYS[1])
end
return document
"""


class ApqStore:
    def __init__(self, redis: Redis, prefix: str, ttl_s: int, max_documents: int) -> None:
        self._prefix = f"{prefix}:apq"
        self._index = f"{self._prefix}:index"
        self._ttl_s = ttl_s
        self._max_documents = max_documents
        self._register = redis.register_script(_REGISTER)
        self._use = redis.register_script(_USE)

    def _key(self, sha256: str) -> str:
        return f"{self._prefix}:{sha256}"

    async def get(self, sha256: str) -> str | None:
        try:
            found = await self._use(keys=[self._key(sha256), self._index],
                                    args=[self._ttl_s, _now_ms()])  # fmt: skip
        except RedisError as exc:
            log.warning("persisted queries unavailable (Redis): %s", exc)
            return None
        return found.decode() if isinstance(found, bytes) else found

    async def put(self, sha256: str, document: str) -> None:
        try:
            await self._register(
                keys=[self._key(sha256), self._index],
                args=[document, self._ttl_s, self._max_documents, _now_ms()],
            )
        except RedisError as exc:
            log.warning("persisted query not kept (Redis): %s", exc)


def _now_ms() -> int:
    return int(time.time() * 1000)
