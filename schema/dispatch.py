"""Runs a command for a mutation resolver and maps its failures, in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from schema.context import Info
from schema.errors import UserError, user_error
from writes import errors as domain
from writes.commands import Command
from writes.unit_of_work import CommandMetadata
from writes.views import Committed

R = TypeVar("R")


async def run_command(
    info: Info,
    command: Command,
    success: Callable[[Committed[Any]], R],
    *,
    authenticated: bool = True,
) -> R | UserError:
    """Handle `command` as the caller; domain refusals become result-union members.

    Unauthenticated / Forbidden propagate and become top-level errors with their codes.
    """
    ctx = info.context
    actor = ctx.actor() if authenticated else None
    meta = CommandMetadata(actor=actor, correlation_id=ctx.correlation_id)
    try:
        committed = await ctx.bus.handle(command, meta)
    except (domain.Unauthenticated, domain.Forbidden):
        raise
    except domain.DomainError as exc:
        return user_error(exc)
    return success(committed)
