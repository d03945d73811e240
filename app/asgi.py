"""The ASGI application: routes, middleware and the lifespan that owns every client."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from app.bootstrap import build_clients
from app.graphiql import graphiql_routes
from app.graphql_http.requests import BatchPolicy
from app.graphql_http.view import HttpRules
from app.graphql_view import AppDependencies, ShopGraphQL
from app.health import Probes, health_routes
from app.limits import BodySizeLimit
from app.metrics import ApiMetrics, metrics_route
from app.origins import BrowserOrigins
from app.persisted.manifest import TrustedDocuments
from app.persisted.resolver import PersistedQueries
from app.persisted.store import ApqStore
from app.settings import Settings
from app.sse import EventStreams
from app.throttles import RedisThrottle
from reads.fallback import PROJECTIONS
from reads.hub import ProjectionHub
from reads.near_cache import NearCache
from reads.products import SearchLimits
from reads.queries import ReadQueries
from reads.read_model import ReadModel, ReadModelUnavailable
from schema.auth import TokenService
from schema.build import build_schema
from schema.consistency import ConsistencyTokens
from schema.limits import Budgets, QueryLimits
from schema.throttling import AuthThrottles
from workers.notifications import projections_channel
from writes.db import ensure_migrated, session_factory

log = logging.getLogger(__name__)


def settle_garbage_collector() -> None:
    """Keep start-up's objects out of every later collection, and collect less often.

    The schema, the imported modules and the clients live as long as the process: frozen,
    the full collections that requests trigger no longer walk them. A request allocates
    thousands of short-lived objects, so the youngest generation is collected after
    50,000 allocations, not 700: fewer pauses in the middle of requests.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def query_limits(settings: Settings) -> tuple[QueryLimits, Budgets]:
    """The document limits and cost budgets the settings ask for."""
    limits = QueryLimits(
        max_characters=settings.max_query_characters,
        max_tokens=settings.max_query_tokens,
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_query_aliases,
        max_directives=settings.max_query_directives,
        max_fields=settings.max_query_fields,
        max_repeated_fields=settings.max_query_repeated_fields,
    )
    budgets = Budgets(
        anonymous=settings.query_budget_anonymous,
        customer=settings.query_budget_customer,
        admin=settings.query_budget_admin,
    )
    return limits, budgets


def http_rules(settings: Settings) -> HttpRules:
    """Batching and GET caching as the settings ask (app/graphql_http/)."""
    return HttpRules(
        batches=BatchPolicy(settings.batching, settings.batch_max_operations),
        get_max_age_seconds=settings.get_cache_max_age_seconds,
    )


def trusted_documents(settings: Settings) -> TrustedDocuments:
    """The manifest of trusted documents, read before serving: one that cannot be read stops
    the start-up (an API without it would refuse every persisted-only client)."""
    trusted = (
        TrustedDocuments.load(settings.trusted_documents_path)
        if settings.trusted_documents_path is not None
        else TrustedDocuments()
    )
    if settings.persisted_queries == "persisted_only" and not trusted:
        raise ValueError("PERSISTED_QUERIES=persisted_only needs TRUSTED_DOCUMENTS_PATH")
    return trusted


def create_app(settings: Settings) -> Starlette:
    """The app for fully resolved settings (every URL set)."""
    if not (settings.database_url and settings.redis_url and settings.mongodb_url):
        raise ValueError("create_app needs DATABASE_URL, MONGODB_URL and REDIS_URL resolved")
    limits, budgets = query_limits(settings)
    origins = BrowserOrigins.from_settings(settings)
    trusted = trusted_documents(settings)
    metrics = ApiMetrics(settings.metrics_max_operation_names)
    schema = build_schema(
        limits=limits,
        budgets=budgets,
        introspection=settings.introspection_enabled,
        suggestions=settings.field_suggestions_enabled,
        observer=metrics,
    )
    graphql = ShopGraphQL(
        schema,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        origins=origins,
        connection_init_wait_timeout=timedelta(seconds=10),
        max_subscriptions_per_connection=settings.ws_max_subscriptions_per_connection,
        max_frame_bytes=settings.max_body_bytes,
        max_connections_per_address=settings.ws_max_connections_per_address,
        http_rules=http_rules(settings),
        compiled=schema.compiled_operations() if settings.compiled_operations else None,
    )

    streams = EventStreams(graphql, keep_alive_s=settings.sse_keep_alive_seconds)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Built without connecting: a store outage must not stop the API from serving.
        clients = build_clients(settings)
        engine, redis = clients.engine, clients.redis
        hub = ProjectionHub(
            redis,
            projections_channel(settings.redis_prefix),
            on_listener_count=metrics.notification_listeners_changed,
        )
        sessions = session_factory(engine)
        read_model = ReadModel(clients.db)
        near_cache = (
            NearCache(
                redis,
                projections_channel(settings.redis_prefix),
                PROJECTIONS,
                read_model.positions,
                settings.near_cache_documents,
            )
            if settings.near_cache_documents > 0
            else None
        )
        try:
            await read_model.ensure_indexes()
        except ReadModelUnavailable as exc:  # serving writes (and fallbacks) must not wait on it
            log.warning("read-model indexes not ensured at start-up: %s", exc)
        try:
            await ensure_migrated(engine)
            app.state.engine = engine
            app.state.probes = Probes(engine, clients.db, redis, settings)
            app.state.dependencies = AppDependencies(
                bus=clients.bus,
                tokens=TokenService(
                    settings.jwt_secret,
                    settings.jwt_algorithm,
                    settings.jwt_ttl_seconds,
                    settings.jwt_issuer,
                ),
                consistency=ConsistencyTokens(settings.consistency_keys()),
                queries=ReadQueries(
                    read_model,
                    hub,
                    sessions,
                    settings.consistency_wait_ms / 1000,
                    SearchLimits(settings.max_search_characters, settings.max_search_words),
                    near_cache,
                ),
                persisted=PersistedQueries(
                    settings.persisted_queries,
                    ApqStore(
                        redis,
                        settings.redis_prefix,
                        settings.apq_ttl_seconds,
                        settings.apq_max_documents,
                    ),
                    trusted,
                ),
                throttles=AuthThrottles(
                    RedisThrottle(redis, settings.redis_prefix),
                    log_in_per_account=settings.login_attempts_per_account,
                    log_in_per_address=settings.login_attempts_per_address,
                    log_in_window_seconds=settings.login_window_seconds,
                    sign_up_per_address=settings.signup_attempts_per_address,
                    sign_up_window_seconds=settings.signup_window_seconds,
                ),
            )
            if near_cache is not None:
                near_cache.start()
            settle_garbage_collector()
            yield
        finally:
            if near_cache is not None:
                await near_cache.stop()
            await hub.close()
            await clients.close()

    middleware = [
        Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
        origins.cors_middleware(settings),
    ]
    app = Starlette(
        routes=[
            Route("/graphql", streams),  # graphql-sse requests; the rest go on to `graphql`
            WebSocketRoute("/graphql", graphql),
            *health_routes(),
            metrics_route(metrics),
            *(graphiql_routes() if settings.graphiql_enabled else []),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    # Whatever serves the app caps websocket frames at this too (uvicorn's ws_max_size).
    app.state.max_body_bytes = settings.max_body_bytes
    # The server ends open event streams when it shuts down (app.server.ShopServer).
    app.state.event_streams = streams
    return app
