"""The near cache's bookkeeping (reads/near_cache.py): what it may serve, and when it
forgets. Its subscription is exercised against real Redis in tests/e2e/test_near_cache.py."""

from __future__ import annotations

from redis.asyncio import Redis

from reads.hub import Notification
from reads.near_cache import NearCache

ORDER = "5f1b6a52-7f0e-4d8c-9c1e-3c1f2a9b8d01"
OTHER = "7a2c9e11-2b3d-4e5f-8a9b-0c1d2e3f4a5b"


def _cache(max_documents: int = 10) -> NearCache:
    async def positions(names: tuple[str, ...]) -> dict[str, int]:
        raise AssertionError("not subscribed in these tests")

    # A client that is never used: these tests drive the cache's bookkeeping directly.
    return NearCache(Redis(), "test:projections", ("orders",), positions, max_documents)


def _ready(cache: NearCache, covered: int = 10) -> NearCache:
    cache.begin({"orders": covered})
    return cache


def _batch(after: int | None, position: int, *ids: str, rebuilt: bool = False) -> Notification:
    return Notification("orders", ids, position, rebuilt=rebuilt, after=after)


def test_nothing_is_stored_or_served_before_the_cache_is_ready() -> None:
    cache = _cache()
    assert cache.ticket("orders") is None
    cache.put(cache.ticket("orders"), "orders", ORDER, {"_id": ORDER})
    _ready(cache)
    assert cache.get("orders", "orders", ORDER, None) is None


def test_a_stored_document_is_served_without_a_token_and_up_to_the_covered_position() -> None:
    cache = _ready(_cache(), covered=10)
    cache.put(cache.ticket("orders"), "orders", ORDER, {"_id": ORDER, "version": 1})
    assert cache.get("orders", "orders", ORDER, None) == {"_id": ORDER, "version": 1}
    assert cache.get("orders", "orders", ORDER, 10) is not None
    # A token beyond what the cache has heard of: the standard read (wait, or fall back).
    assert cache.get("orders", "orders", ORDER, 11) is None
    # Another generation's collection: the API switched, the entry is not the live one.
    assert cache.get("orders", "orders_g2", ORDER, None) is None


def test_a_batch_forgets_the_documents_it_changed_and_covers_its_position() -> None:
    cache = _ready(_cache(), covered=10)
    cache.put(cache.ticket("orders"), "orders", ORDER, {"_id": ORDER})
    cache.put(cache.ticket("orders"), "orders", OTHER, {"_id": OTHER})
    cache.apply(_batch(10, 14, ORDER))
    assert cache.get("orders", "orders", ORDER, None) is None
    assert cache.get("orders", "orders", OTHER, 14) is not None
    assert cache.covered("orders") == 14


def test_a_read_that_raced_a_batch_is_not_stored() -> None:
    cache = _ready(_cache(), covered=10)
    ticket = cache.ticket("orders")  # the read begins
    cache.apply(_batch(10, 12, OTHER))  # a batch commits while it runs
    cache.put(ticket, "orders", ORDER, {"_id": ORDER})  # it may have read the old state
    assert cache.get("orders", "orders", ORDER, None) is None


def test_another_projections_batch_does_not_stop_a_read_from_being_stored() -> None:
    cache = _ready(_cache(), covered=10)
    ticket = cache.ticket("orders")
    cache.apply(Notification("sales", (), 12, after=10))
    cache.put(ticket, "orders", ORDER, {"_id": ORDER})
    assert cache.get("orders", "orders", ORDER, None) is not None


def test_a_missed_notification_empties_the_cache() -> None:
    cache = _ready(_cache(), covered=10)
    cache.put(cache.ticket("orders"), "orders", ORDER, {"_id": ORDER})
    cache.apply(_batch(12, 15))  # (10, 12] was never announced
    assert cache.get("orders", "orders", ORDER, None) is None
    assert cache.covered("orders") == 15


def test_a_worker_that_does_not_say_where_its_batch_began_empties_the_cache() -> None:
    cache = _ready(_cache(), covered=10)
    cache.put(cache.ticket("orders"), "orders", ORDER, {"_id": ORDER})
    cache.apply(_batch(None, 11))
    assert cache.get("orders", "orders", ORDER, None) is None


def test_a_rebuild_empties_the_cache() -> None:
    cache = _ready(_cache(), covered=10)
    cache.put(cache.ticket("orders"), "orders", ORDER, {"_id": ORDER})
    cache.apply(_batch(10, 10, rebuilt=True))
    assert cache.get("orders", "orders", ORDER, None) is None


def test_a_retry_at_an_old_position_forgets_what_it_changed() -> None:
    cache = _ready(_cache(), covered=20)
    cache.put(cache.ticket("orders"), "orders", ORDER, {"_id": ORDER})
    cache.apply(_batch(7, 7, ORDER))  # `shop projections retry` replays parked events
    assert cache.get("orders", "orders", ORDER, None) is None
    assert cache.covered("orders") == 20


def test_the_least_recently_read_document_goes_first() -> None:
    cache = _ready(_cache(max_documents=2), covered=10)
    third = "0b9c8d7e-6f5a-4b3c-8d2e-1f0a9b8c7d6e"
    for doc_id in (ORDER, OTHER):
        cache.put(cache.ticket("orders"), "orders", doc_id, {"_id": doc_id})
    assert cache.get("orders", "orders", ORDER, None) is not None  # OTHER is now the oldest
    cache.put(cache.ticket("orders"), "orders", third, {"_id": third})
    assert cache.get("orders", "orders", OTHER, None) is None
    assert cache.get("orders", "orders", ORDER, None) is not None
