"""writes/passwords.py: the argon2id parameters are ours, and hashes wait their turn."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher

from writes import passwords
from writes.passwords import ARGON2_PARAMETERS, Passwords


async def test_hashes_use_the_stated_parameters_and_verify() -> None:
    hashing = Passwords()

    stored = await hashing.hash("correct-horse-battery")

    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await hashing.verify(stored, "correct-horse-battery")
    assert not await hashing.verify(stored, "wrong-horse-battery")
    assert not await hashing.verify(None, "correct-horse-battery")  # the dummy hash
    assert hashing.computed == 4
    assert not Passwords.needs_rehash(stored)


def test_a_hash_with_the_library_defaults_needs_rehashing() -> None:
    library_default = PasswordHasher().hash("correct-horse-battery")

    assert ARGON2_PARAMETERS.memory_cost != PasswordHasher().memory_cost
    assert Passwords.needs_rehash(library_default)


def test_the_dummy_hash_costs_what_a_real_one_does() -> None:
    assert passwords._DUMMY_HASH.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


class _BlockingHasher:
    """Stands in for argon2 to count hashes in flight; each waits for the test's go."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.reached = threading.Event()  # `expected` hashes are in flight
        self.go = threading.Event()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.started = 0

    def hash(self, password: str) -> str:
        with self.lock:
            self.in_flight += 1
            self.started += 1
            self.most = max(self.most, self.in_flight)
            if self.started == self.expected:
                self.reached.set()
        self.go.wait(timeout=30)
        with self.lock:
            self.in_flight -= 1
        return "hashed"


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_no_more_hashes_run_at_once_than_the_bound(
    concurrency: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocking = _BlockingHasher(expected=concurrency)
    monkeypatch.setattr(passwords, "_hasher", blocking)
    hashing = Passwords(concurrency)

    tasks = [asyncio.create_task(hashing.hash(f"password-{n}")) for n in range(6)]
    assert await asyncio.to_thread(blocking.reached.wait, 30)
    started_while_blocked = blocking.started
    blocking.go.set()
    assert await asyncio.gather(*tasks) == ["hashed"] * 6

    assert started_while_blocked == concurrency
    assert blocking.most == concurrency


async def test_a_cancelled_hash_keeps_its_turn_until_its_thread_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that gives up mid-hash (a websocket closed during logIn) frees no turn
    while its thread still computes: the next hash waits for that thread."""
    blocking = _BlockingHasher(expected=1)
    monkeypatch.setattr(passwords, "_hasher", blocking)
    hashing = Passwords(1)

    abandoned = asyncio.create_task(hashing.hash("given-up"))
    assert await asyncio.to_thread(blocking.reached.wait, 30)
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    waiting = asyncio.create_task(hashing.hash("next"))
    # One turn of the loop and more: had the turn been freed, the next hash would start.
    for _ in range(5):
        await asyncio.sleep(0)
    assert (blocking.started, blocking.in_flight) == (1, 1)

    blocking.go.set()
    assert await waiting == "hashed"
    assert (blocking.started, blocking.most) == (2, 1)


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Passwords(0)
