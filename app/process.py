"""What every `shop` process does around its work: fill in the store URLs the user left
unset with embedded servers under DATA_DIR, and turn SIGTERM into an exception that unwinds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

# Imported where used: `shop --help` imports this module and must stay light.
if TYPE_CHECKING:
    from app.settings import Settings


@contextmanager
def resolved_settings(
    settings: Settings, *, postgres: bool = False, mongo: bool = False, redis: bool = False
) -> Iterator[Settings]:
    """Settings with every needed URL set, starting (or joining) embedded servers for the rest."""
    need_postgres = postgres and not settings.database_url
    need_mongo = mongo and not settings.mongodb_url
    need_redis = redis and not settings.redis_url
    if not (need_postgres or need_mongo or need_redis):
        yield settings
        return
    from app.embedded import embedded_services

    with embedded_services(
        settings.data_dir, postgres=need_postgres, mongo=need_mongo, redis=need_redis
    ) as urls:
        yield settings.with_urls(urls.database_url, urls.mongodb_url, urls.redis_url)


class Terminated(BaseException):
    """SIGTERM, raised so every `with` block (embedded servers included) unwinds."""


def terminate(signum: int, frame: FrameType | None) -> None:
    """The SIGTERM handler: raise Terminated."""
    raise Terminated
