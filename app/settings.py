"""One settings class for the whole service, read from the environment (and an optional .env)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_JWT_SECRET = "dev-only-secret-change-me-0123456789abcdef"  # noqa: S105 (refused in production)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIN_JWT_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


class Settings(BaseSettings):
    """Every knob the service has; README.md lists them with their defaults."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000

    # Unset URL: an embedded server is started from a wheel under data_dir.
    database_url: str | None = None
    mongodb_url: str | None = None
    redis_url: str | None = None
    mongodb_database: str = "shop"
    # Prefixes every Redis key and channel this service uses, so runs can share one Redis.
    redis_prefix: str = "shop"
    data_dir: Path = PROJECT_ROOT / ".devdata"

    # Read-your-writes: how long a query waits for the projection before the write store answers.
    consistency_wait_ms: int = 150
    # How soon a read gives up on an unreachable MongoDB (and falls back, or says so).
    mongodb_timeout_ms: int = 1000

    # The projection worker: events per batch, and how long a dead worker's projections stay
    # claimed before another worker takes them over (must exceed the 1 s renewal tick).
    projection_batch_size: int = 500
    projection_lease_ttl_ms: int = 5000

    db_pool_size: int = 10
    db_max_overflow: int = 20

    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_ttl_seconds: int = 24 * 3600
    jwt_issuer: str = "shop-api"

    graphiql: bool | None = None
    introspection: bool | None = None
    cors_origins: list[str] = Field(default_factory=list)
    ws_allowed_origins: list[str] = Field(default_factory=list)

    max_query_depth: int = 10
    max_query_tokens: int = 2000
    max_query_aliases: int = 15
    max_body_bytes: int = 100_000

    log_level: str = "INFO"

    # Health and metrics (issue 10b; docs/operations.md). Each /readyz check gives up after
    # this long, so the probe itself never hangs on a store that stopped answering.
    readiness_check_timeout_ms: int = 2000
    # /readyz fails once a projection has more parked events than this (of its live generation).
    readiness_max_parked_events: int = 0
    # /readyz fails once a projection has had no live worker for this long (as this API sees it).
    readiness_stopped_grace_s: float = 60.0
    # Distinct GraphQL operation names /metrics labels; later ones count as "(other)".
    metrics_max_operation_names: int = 200

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.jwt_secret == DEFAULT_JWT_SECRET:
            raise ValueError(
                "JWT_SECRET is the development default: set JWT_SECRET to a long random "
                "value before running with ENVIRONMENT=production"
            )
        # An HMAC key shorter than the digest is weak; PyJWT warns on every token with one.
        minimum = MIN_JWT_SECRET_BYTES[self.jwt_algorithm]
        if len(self.jwt_secret.encode()) < minimum:
            raise ValueError(
                f"JWT_SECRET must be at least {minimum} characters long "
                f"for JWT_ALGORITHM={self.jwt_algorithm}"
            )
        return self

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def graphiql_enabled(self) -> bool:
        return self.is_development if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return self.is_development if self.introspection is None else self.introspection

    def with_urls(
        self,
        database_url: str | None = None,
        mongodb_url: str | None = None,
        redis_url: str | None = None,
    ) -> Settings:
        """A copy with the given URLs filled in (the ones already set win)."""
        return self.model_copy(
            update={
                "database_url": self.database_url or database_url,
                "mongodb_url": self.mongodb_url or mongodb_url,
                "redis_url": self.redis_url or redis_url,
            }
        )
