"""argon2id password hashing, off the event loop and a bounded number at a time.

The parameters are OWASP's first argon2id configuration (19 MiB, 2 passes, 1 lane),
stated here rather than left to the library's defaults (64 MiB, 3 passes, 4 lanes, about
eight times the CPU per hash); the numbers are in
docs/decisions/0025-argon2-parameters-and-control-characters.md.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from argon2 import Parameters, PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

ARGON2_PARAMETERS = Parameters(
    type=Type.ID,
    version=19,
    salt_len=16,
    hash_len=32,
    time_cost=2,
    memory_cost=19 * 1024,  # KiB
    parallelism=1,
)
# Per process, unless the API's settings say otherwise: hashing then takes at most one
# core from the event loop and the requests it serves.
DEFAULT_CONCURRENT_HASHES = 1

T = TypeVar("T")

_hasher = PasswordHasher.from_parameters(ARGON2_PARAMETERS)
# Verified against when the email is unknown, so a miss costs as much as a wrong password
# and response times do not reveal which emails have accounts.
_DUMMY_HASH = _hasher.hash("not-a-real-password-only-for-timing")


class Passwords:
    """Hashes and verifies at most `concurrency` passwords at a time; the rest wait their turn.

    A burst of logIns otherwise runs one hash per thread of the default executor, and
    every core goes to argon2 while the event loop and the other requests wait.
    """

    def __init__(self, concurrency: int = DEFAULT_CONCURRENT_HASHES) -> None:
        if concurrency < 1:
            raise ValueError("concurrent password hashes must be at least 1")
        self._turns = asyncio.Semaphore(concurrency)
        # How many hashes this process computed (verifications included), for tests and
        # operators: a throttled request must not add to it.
        self.computed = 0

    async def hash(self, password: str) -> str:
        """An argon2id hash of the password."""
        return await self._run(partial(_hasher.hash, password))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether the password matches; a missing hash costs the same time and fails."""

        def check() -> bool:
            try:
                return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(
                    password_hash
                )
            except (VerificationError, InvalidHashError):
                return False

        return await self._run(check)

    @staticmethod
    def needs_rehash(password_hash: str) -> bool:
        """Whether a stored hash was made with other parameters than ARGON2_PARAMETERS."""
        try:
            return _hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return False

    async def _run(self, work: Callable[[], T]) -> T:
        """`work` on a thread once a turn is free; the turn is held until the thread ends.

        A caller cancelled mid-hash (a client that closed its socket) must not give its
        turn back early: its thread still computes, and the next hash would run beside it.
        """
        await self._turns.acquire()
        self.computed += 1
        try:
            running = asyncio.get_running_loop().run_in_executor(
                None, partial(contextvars.copy_context().run, work)
            )
        except BaseException:
            self._turns.release()
            raise
        running.add_done_callback(lambda _: self._turns.release())
        # Shielded: cancelling the caller leaves `running` (and so the turn) to the thread.
        return await asyncio.shield(running)
