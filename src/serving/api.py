"""The HTTP API (FastAPI): sessions, recommendations, feedback, a stateless call, health, metrics,
and the page where a person plays the user.

===========================================  ==================================================
``POST   /v1/sessions``                        a session from a past history, a persona, or nothing
``GET    /v1/sessions/{id}``                   its history, clock and estimated interest by topic
``GET    /v1/sessions/{id}/recommendations``   the top ``k`` items for it now (changes nothing)
``POST   /v1/sessions/{id}/feedback``          the user was shown an item and clicked it or not
``DELETE /v1/sessions/{id}``                   end it
``POST   /v1/recommendations``                 the top ``k`` items for a whole history, no session
``GET    /v1/health``                          the agent and the store's size
``GET    /metrics``                            request counts and latencies (Prometheus text)
``GET    /``                                   the page (``serving/static/index.html``)
===========================================  ==================================================

Bad input gets a 4xx whose ``detail`` says what is wrong: 422 for malformed bodies, wrong types,
unknown item ids, ``k`` out of range and over-long histories; 404 for an unknown, expired,
evicted or deleted session; 409 for feedback to a session whose history is full. The OpenAPI page
is at ``/docs``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response

from serving.dependencies import ServiceSettings
from serving.metrics import ServiceMetrics
from serving.recommender import ServedRecommender
from serving.routes import API_VERSION, PERSONA_PAST_LENGTH, ROUTERS
from serving.sessions import SessionStore

__all__ = ["API_VERSION", "PERSONA_PAST_LENGTH", "create_app"]


def create_app(recommender: ServedRecommender, store: SessionStore | None = None, max_k: int = 100) -> FastAPI:
    """The service for one loaded recommender: the routers of :mod:`serving.routes`, with the
    recommender, the store, the settings and the metrics on ``app.state`` for their dependencies.

    :param store: the session store (default: :class:`SessionStore` with its defaults).
    :param max_k: the most items one recommendation may ask for (capped at the catalog's size).
    """
    store = store if store is not None else SessionStore()
    settings = ServiceSettings(max_k=min(max_k, recommender.num_items))
    app = FastAPI(title="recenv recommender", version=API_VERSION,
                  description="A trained recenv agent served over HTTP (sessions, recommendations, feedback).")
    app.state.recommender, app.state.store, app.state.settings = recommender, store, settings
    app.state.metrics = ServiceMetrics(lambda: len(store), lambda: (store.expired, store.evicted))
    app.middleware("http")(count_requests)
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = lambda: _openapi_with_max_k(app, settings.max_k)  # type: ignore[method-assign]
    return app


async def count_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Middleware: count every request and its latency by route template, method and status
    (a request whose handler raised counts as a 500)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        route = request.scope.get("route")
        request.app.state.metrics.observe(getattr(route, "path", "unmatched"), request.method, status,
                                          time.perf_counter() - started)


def _openapi_with_max_k(app: FastAPI, max_k: int) -> dict[str, Any]:
    """FastAPI's schema, with this app's bound on the ``k`` query parameter written in, as
    ``Query(le=max_k)`` would write it (:func:`serving.dependencies.recommendation_query` checks it)."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        for operations in schema["paths"].values():
            for operation in operations.values():
                for parameter in operation.get("parameters", ()):
                    if parameter["in"] == "query" and parameter["name"] == "k":
                        description = f"how many items, 1 to {max_k}"
                        parameter["schema"] = {"type": parameter["schema"]["type"], "maximum": max_k,
                                               **{**parameter["schema"], "description": description}}
                        parameter["description"] = description
    return app.openapi_schema
