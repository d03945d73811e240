"""One settings class for the whole service, read from the environment (and an optional .env)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_JWT_SECRET = "dev-only-secret-change-me-0123456789abcdef"  # noqa: S105 (refused in production)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIN_JWT_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
MIN_CONSISTENCY_KEY_BYTES = 32
# Domain separation: the consistency-token key derived from JWT_SECRET is never JWT_SECRET.
_DERIVED_CONSISTENCY_KEY = b"shop/consistency-token-key/v1"


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
    # Repeated queries served by compiled plans (schema/compiled/, decision 0072).
    compiled_operations: bool = True
    # Documents each API process keeps near (reads/near_cache.py, decision 0073); 0: none.
    near_cache_documents: int = Field(default=10_000, ge=0)
    # How soon a read gives up on an unreachable MongoDB (and falls back, or says so); the
    # worker's batches too (the loop retries them). API and worker share it (app/bootstrap.py).
    mongodb_timeout_ms: int = 1000

    # The projection worker: events per batch, and how long a dead worker's projections stay
    # claimed before another worker takes them over (must exceed the 1 s renewal tick).
    projection_batch_size: int = 500
    projection_lease_ttl_ms: int = 5000
    # How long a rebuild waits after its swap before it drops the old generation, for
    # readers that resolved the old names just before (read names are cached for 1 s).
    # An empty old generation (a fresh store) is dropped at once.
    projection_drop_grace_s: float = 5.0

    db_pool_size: int = 10
    db_max_overflow: int = 20

    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_ttl_seconds: int = 24 * 3600
    jwt_issuer: str = "shop-api"

    graphiql: bool | None = None
    introspection: bool | None = None
    # Browser origins allowed to call the API, over HTTP (CORS) and websockets alike
    # (app/origins.py); loopback origins on any port are allowed too, by default in
    # development only. WS_ALLOWED_ORIGINS adds origins (it once covered websockets alone).
    cors_origins: list[str] = Field(default_factory=list)
    ws_allowed_origins: list[str] = Field(default_factory=list)
    cors_allow_loopback: bool | None = None
    # Request headers a cross-origin page may send: the API's own, and Apollo Client's.
    cors_allow_headers: list[str] = Field(
        default_factory=lambda: [
            "accept",
            "authorization",
            "content-type",
            "x-consistency-token",
            "x-request-id",
            "apollographql-client-name",
            "apollographql-client-version",
            "apollo-require-preflight",
            "x-apollo-operation-name",
            "x-graphql-event-stream-token",
        ]
    )
    # How long a browser may cache a preflight's answer.
    cors_max_age_s: int = 600

    max_query_depth: int = 10
    max_query_tokens: int = 2000
    max_query_aliases: int = 15
    max_body_bytes: int = 100_000

    log_level: str = "INFO"

    # Issue 8, part C: throttles on logIn and signUp (fixed windows counted in Redis and
    # shared by every API process), and password hashes at a time per API process.
    login_attempts_per_account: int = 10
    login_attempts_per_address: int = 100
    login_window_seconds: int = 900
    signup_attempts_per_address: int = 20
    signup_window_seconds: int = 3600
    password_hash_concurrency: int = 1

    # Issue 8, part B: consistency tokens and the write-store fallback's inputs.
    # HMAC keys for consistency tokens, newest first: the first signs, all verify (a JSON
    # list in the environment); a key derived from JWT_SECRET signs when it is empty.
    consistency_token_keys: list[SecretStr] = Field(default_factory=list)
    # products(search:) bounds, so no search costs more than a small one on either path.
    max_search_characters: int = 200
    max_search_words: int = 20

    # Websockets with the HTTP rules (issue 8, part D; frames are capped at max_body_bytes).
    # Open sockets per client address in each API process (decision 0027), and operations in
    # flight on one socket (subscriptions, and queries or mutations not yet answered).
    ws_max_connections_per_address: int = Field(default=16, ge=1)
    ws_max_subscriptions_per_connection: int = Field(default=20, ge=1)
    # Issue 9: graphql-sse streams send a comment after this many idle seconds, so proxies
    # (nginx cuts at 60 s by default) keep them open (decision 0050).
    sse_keep_alive_seconds: float = Field(default=15.0, gt=0)

    # Issue 8, part A: document limits and the cost budget (docs/decisions/0020, 0021).
    # Measured on the document as executed, fragments expanded (schema/limits/).
    max_query_characters: int = 15_000
    max_query_directives: int = 50
    max_query_fields: int = 1000
    # Pairs of same-named fields at one place: graphql-core compares each pair.
    max_query_repeated_fields: int = 2000
    # The most one operation may cost (schema/limits/costs.py), by the caller's role.
    query_budget_anonymous: int = 1500
    query_budget_customer: int = 6000
    query_budget_admin: int = 12_000
    # "Did you mean ...?" in validation errors: on in development, off in production.
    field_suggestions: bool | None = None

    # Supervision (issue 10a): a process that exits (under `shop dev` or `shop worker
    # --processes N`), or a worker that lost a store, starts again after this pause, doubled
    # on each failure in a row up to the maximum; a run longer than the maximum starts over.
    restart_backoff_ms: int = Field(default=500, gt=0)
    restart_backoff_max_ms: int = Field(default=10_000, gt=0)
    # How `shop serve --processes N` listens (app/serve_processes.py, decision 0079):
    # `per_process`, a socket each (SO_REUSEPORT: the kernel spreads connections evenly),
    # or `shared`, one socket they all accept from (nothing waiting is reset when one dies,
    # but a burst of connections can land on one process).
    listen_sockets: Literal["per_process", "shared"] = "per_process"

    # Persisted documents (app/persisted/): `apq` runs free-form documents and Apollo's
    # automatic persisted queries (shared in Redis, kept `apq_ttl_seconds` after their last
    # use, at most `apq_max_documents`); `persisted_only` runs the trusted documents of
    # TRUSTED_DOCUMENTS_PATH only (a production choice); `off` refuses hashes.
    persisted_queries: Literal["off", "apq", "persisted_only"] = "apq"
    apq_ttl_seconds: int = Field(default=86_400, gt=0)
    apq_max_documents: int = Field(default=10_000, gt=0)
    trusted_documents_path: Path | None = None

    # Health and metrics (issue 10b; docs/operations.md). Each /readyz check gives up after
    # this long, so the probe itself never hangs on a store that stopped answering.
    readiness_check_timeout_ms: int = 2000
    # /readyz fails once a projection has more parked events than this (of its live generation).
    readiness_max_parked_events: int = 0
    # /readyz fails once a projection has had no live worker for this long (as this API sees it).
    readiness_stopped_grace_s: float = 60.0
    # Distinct GraphQL operation names /metrics labels; later ones count as "(other)".
    metrics_max_operation_names: int = 200

    # One bootstrap (issue 10d; app/bootstrap.py): how soon a Redis command or connection
    # gives up, in every process (API, worker, CLI), so an outage fails fast and is retried.
    redis_timeout_ms: int = Field(default=2000, gt=0)

    # GraphQL over HTTP (issue 9, part 3; docs/decisions/0041-0043). JSON-array bodies
    # (Apollo's BatchHttpLink) are refused unless BATCHING is on; a batch then holds at most
    # this many operations, run in order against one request's cost budget.
    batching: bool = False
    batch_max_operations: int = Field(default=10, ge=1)
    # Cache-Control max-age of a successful GET query sent without credentials or a
    # consistency token (everything else is no-store); 0: caches must ask every time.
    get_cache_max_age_seconds: int = Field(default=0, ge=0)

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

    @model_validator(mode="after")
    def _check_consistency_token_keys(self) -> Settings:
        keys = [key.get_secret_value().encode() for key in self.consistency_token_keys]
        if any(len(key) < MIN_CONSISTENCY_KEY_BYTES for key in keys):
            raise ValueError(
                "every key in CONSISTENCY_TOKEN_KEYS must be at least "
                f"{MIN_CONSISTENCY_KEY_BYTES} characters long"
            )
        if len(set(keys)) != len(keys):
            raise ValueError("CONSISTENCY_TOKEN_KEYS lists the same key twice")
        return self

    def consistency_keys(self) -> list[bytes]:
        """The consistency-token HMAC keys: the first signs, every one verifies.

        The key derived from JWT_SECRET signs when CONSISTENCY_TOKEN_KEYS is empty and
        still verifies, last, when it is not: configuring keys breaks no token in flight.
        (Whoever knows JWT_SECRET can mint admin tokens already; this key adds no power.)
        """
        configured = [key.get_secret_value().encode() for key in self.consistency_token_keys]
        derived = hmac.new(self.jwt_secret.encode(), _DERIVED_CONSISTENCY_KEY, hashlib.sha256)
        return [*configured, derived.digest()]

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def graphiql_enabled(self) -> bool:
        return self.is_development if self.graphiql is None else self.graphiql

    @property
    def cors_loopback_allowed(self) -> bool:
        return self.is_development if self.cors_allow_loopback is None else self.cors_allow_loopback

    @property
    def introspection_enabled(self) -> bool:
        return self.is_development if self.introspection is None else self.introspection

    @property
    def field_suggestions_enabled(self) -> bool:
        return self.is_development if self.field_suggestions is None else self.field_suggestions

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
