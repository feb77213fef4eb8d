"""What the endpoints need, handed to them by FastAPI dependencies from the app's state.

:func:`serving.api.create_app` puts one :class:`~serving.recommender.ServedRecommender`, one
:class:`~serving.sessions.SessionStore`, the :class:`ServiceSettings` and the
:class:`~serving.metrics.ServiceMetrics` on ``app.state``. An endpoint asks for them by annotating
a parameter :data:`Recommender`, :data:`Store`, :data:`Settings` or :data:`Metrics` (``Annotated[..., Depends(...)]``),
so the routers of :mod:`serving.routes` are defined once, at module level, and serve any app.

The providers are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in its thread
pool, which would add a thread hop to every request only to read an attribute.

The checks that need the loaded catalog or the store's limits live here too; each raises the
4xx the API documents (:mod:`serving.api`), with a ``detail`` that names the bad value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, NamedTuple

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError

from serving.metrics import ServiceMetrics
from serving.recommender import ServedRecommender
from serving.sessions import ServedSession, SessionGoneError, SessionStore

__all__ = [
    "Metrics",
    "RecommendationQuery",
    "Recommender",
    "ServiceSettings",
    "SessionId",
    "Settings",
    "Store",
    "check_history_length",
    "check_items",
    "live_session",
    "recommendation_query",
]


@dataclass(frozen=True)
class ServiceSettings:
    """The service's limits that are not the store's.

    :param max_k: the most items one recommendation may ask for (already capped at the catalog's size).
    """

    max_k: int


async def served_recommender(request: Request) -> ServedRecommender:
    """The app's recommender (``app.state.recommender``)."""
    return request.app.state.recommender


async def session_store(request: Request) -> SessionStore:
    """The app's session store (``app.state.store``)."""
    return request.app.state.store


async def service_settings(request: Request) -> ServiceSettings:
    """The app's :class:`ServiceSettings` (``app.state.settings``)."""
    return request.app.state.settings


async def service_metrics(request: Request) -> ServiceMetrics:
    """The app's request counters (``app.state.metrics``)."""
    return request.app.state.metrics


Recommender = Annotated[ServedRecommender, Depends(served_recommender)]
Store = Annotated[SessionStore, Depends(session_store)]
Settings = Annotated[ServiceSettings, Depends(service_settings)]
Metrics = Annotated[ServiceMetrics, Depends(service_metrics)]


SessionId = Annotated[str, Path(max_length=64, description="the id POST /v1/sessions returned")]


class RecommendationQuery(NamedTuple):
    """``GET /v1/sessions/{session_id}/recommendations?k=...``: which session, how many items."""

    session_id: str
    k: int


async def recommendation_query(
    request: Request, settings: Settings, session_id: SessionId,
    k: Annotated[int, Query(ge=1, description="how many items, 1 to the service's max_k")] = 10,
) -> RecommendationQuery:
    """The session id and ``k`` of a recommendation request, ``k`` at most ``settings.max_k``.

    The bound differs between apps, so it cannot be a ``Query(le=...)`` of a module-level route;
    a larger ``k`` gets the 422 such a bound gives (the same ``detail``, the raw text as its
    ``input``), and :func:`serving.api.create_app` writes the bound into the OpenAPI schema. The
    session id is declared here, beside ``k``, so that both are checked together and their errors
    come in the order FastAPI gives for an endpoint's own parameters (path, then query).
    """
    if k > settings.max_k:
        raise RequestValidationError([{
            "type": "less_than_equal", "loc": ("query", "k"),
            "msg": f"Input should be less than or equal to {settings.max_k}",
            "input": request.query_params.get("k"), "ctx": {"le": settings.max_k},
        }])
    return RecommendationQuery(session_id, k)


def check_items(recommender: ServedRecommender, items: list[int], where: str) -> None:
    """:raises HTTPException: 422 naming the ids (the first 10) that are not in the catalog."""
    bad = [item for item in items if not 0 <= item < recommender.num_items]
    if bad:
        raise HTTPException(422, f"unknown item id{'s' if len(bad) > 1 else ''} {bad[:10]} in {where}: "
                                 f"ids run from 0 to {recommender.num_items - 1}")


def check_history_length(store: SessionStore, length: int) -> None:
    """:raises HTTPException: 422 when a history is longer than the store's ``max_history``."""
    if length > store.max_history:
        raise HTTPException(422, f"a history of {length} interactions is longer than the limit of {store.max_history}")


def live_session(store: SessionStore, session_id: str) -> ServedSession:
    """The live session (marked used now).

    Called in the endpoint's body, not as a dependency: a request with a bad body or ``k`` gets its
    422 before its session is looked up (and marked used), as FastAPI validates parameters first.

    :raises HTTPException: 404 saying whether the session is unknown, expired, evicted or deleted.
    """
    try:
        return store.get(session_id)
    except SessionGoneError as error:
        raise HTTPException(404, str(error)) from None
