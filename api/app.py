"""The application factory. The lifespan owns the database engine (and its pool)."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from api import docs, openapi, problems
from api.keycache import KeyCache
from api.limits import BodyLimitMiddleware
from api.front import HotPathFront
from api.hotpath import KeyMiddleware, prefilter_routers
from api.access_log import AccessLogMiddleware
from api.ratelimit import AnonymousLimiter, RateLimiter, RateLimitMiddleware, make_buckets
from api.routes import addresses, adjustments, boundaries, changes, divisions, health, inspections
from api.ogc import router as ogc_router  # OGC API – Features under /ogc
from api.routes import doorplates, heritage, pages, placenames, tiles
from api.routes import exports as export_routes
from api.scan_store import open_store
from api.routes import feed as feed_routes
from api.routes import search as search_routes
from registry.db.engine import make_engine
from registry.db.listen import Listener
from registry.db.routing import DatabaseRouter
from registry.doorplates import KeyRing, ScanCounter
from registry.log_setup import flush as flush_logs
from registry.search import SearchService
from registry.tiles import TileCache
from registry.serving import ReadPath
from registry.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the API. Pass `engine` to share one (tests); otherwise the lifespan makes and disposes it."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        owned = engine is None
        app.state.engine = engine if engine is not None else make_engine(settings)
        # The process's one LISTEN connection (registry/db/listen.py), on REGISTRY_LISTEN_URL or the
        # engine's URL (one through a pooler is refused: nothing then follows the notifications),
        # connected on the first subscription: the search, the tile cache and the read path's caches follow it.
        app.state.listener = (Listener(settings.listen_url, setting="REGISTRY_LISTEN_URL") if settings.listen_url
                              else Listener.for_engine(app.state.engine))
        # The search gazetteer: loaded in the background at start-up when the app owns its engine,
        # on the first search otherwise (tests); kept fresh by LISTEN/NOTIFY.
        app.state.search = SearchService(app.state.engine, directory=settings.gazetteer_dir,
                                         listener=app.state.listener)
        # Vector tiles cached per worker; when the app owns its engine the cache follows the applied
        # change sets (LISTEN, registry/tiles.py) and answers a cached tile from memory alone.
        app.state.tile_cache = TileCache()
        # Reads to healthy replicas (REGISTRY_REPLICA_URLS), writes to the primary (registry/db/routing.py);
        # with replicas the search follows the change log there (NOTIFY does not reach a standby).
        app.state.db = DatabaseRouter.open(settings, app.state.engine).start()
        if app.state.db.has_replicas or settings.search_follow == "poll":
            app.state.search.follow = app.state.db.bulk_read_engine  # no statement_timeout for the build
        # The doorplate routes' state: signing keys cached per process, scan counts buffered and
        # written every REGISTRY_DOORPLATE_SCAN_FLUSH_SECONDS.
        app.state.doorplate_keys = KeyRing(ttl=settings.key_cache_seconds)
        app.state.doorplate_scans = ScanCounter(interval=settings.doorplate_scan_flush_seconds,
                                                engine=app.state.engine)
        # The fast read path of scans, reverse and /healthz: an async pool (autocommit, prepared
        # statements) and the plate pages' render cache; opened now when the app owns its engine,
        # on first use otherwise (registry/serving).
        app.state.read_path = ReadPath(settings, app.state.engine.url.render_as_string(hide_password=False),
                                       listener=app.state.listener)
        # every live plate's answer built ahead (REGISTRY_SCAN_STORE_DIR; api/scan_store.py), if any
        app.state.read_path.store = open_store(settings)
        if owned:
            app.state.search.start()
            app.state.tile_cache.follow(app.state.engine, app.state.listener)
            await app.state.read_path.ensure()
        log.info("registry API ready")
        try:
            yield
        finally:
            app.state.search.stop()
            app.state.tile_cache.stop()
            app.state.doorplate_scans.close()  # the buffered counts are written before the engine goes
            app.state.rate_buckets.close()  # the rate-limit leases go back to the shared buckets
            await app.state.read_path.close()
            app.state.listener.stop()  # after its subscribers: its connection goes before the engine
            app.state.db.close()  # its health thread and the replicas' engines (not the primary's)
            if owned:
                app.state.engine.dispose()
            flush_logs()  # the request lines held (REGISTRY_LOG_HOLD_SECONDS) are written before the worker goes

    app = FastAPI(
        title="湖州市地名地址库 Huzhou place-name and address registry",
        version="0.1.0",
        description="Standard addresses, divisions, place names and doorplates of Huzhou. "
        "Errors are application/problem+json (RFC 9457). Send an agency key in X-API-Key.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load Swagger UI from a CDN: api/docs.py serves it locally
        redoc_url=None,
        # FastAPI's native OpenTelemetry asks the global providers on every request whether any is
        # configured; the registry configures none unless told (REGISTRY_OPENTELEMETRY)
        telemetry=None if settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.key_cache = KeyCache(ttl=settings.key_cache_seconds)
    # Rate limits (api/ratelimit.py): one bucket store for keys and anonymous callers, leased per
    # worker from buckets shared by every process (REGISTRY_RATE_LIMIT_BACKEND=postgres).
    app.state.rate_buckets = make_buckets(settings, lambda: app.state.engine)
    app.state.rate_limiter = RateLimiter(app.state.rate_buckets)
    problems.install(app)
    # the hot public reads skip FastAPI's routing (api/front.py); innermost: every middleware still runs
    app.add_middleware(HotPathFront)
    # every route checks a key that is sent (a wrong one is a 401 even where no key is needed): api/hotpath.py
    app.add_middleware(KeyMiddleware)
    app.add_middleware(BodyLimitMiddleware, settings=settings)  # api/limits.py: 413 before a body is read whole
    app.add_middleware(RateLimitMiddleware, settings=settings,  # anonymous callers
                       limiter=AnonymousLimiter(settings, store=app.state.rate_buckets))
    app.add_middleware(AccessLogMiddleware)  # api/access_log.py: the request log, without personal data
    docs.install(app)
    openapi.install(app)  # api/openapi.py: every error, media type and constraint in /openapi.json
    # The order of the OpenAPI document's paths.
    for router in (health.router, divisions.router, addresses.router, changes.router, boundaries.router,
                   inspections.router, adjustments.router, doorplates.router, search_routes.router, ogc_router,
                   export_routes.router, feed_routes.router, tiles.router, pages.router, placenames.router,
                   heritage.router):
        app.include_router(router)
    prefilter_routers(app)  # api/hotpath.py: a router whose paths cannot match is skipped at once
    return app
