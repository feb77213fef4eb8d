"""The API's endpoints, one :class:`fastapi.APIRouter` per concern (the table: :mod:`serving.api`).

- :data:`session_routes`: create, read and end a session;
- :data:`recommendation_routes`: a session's recommendations, and feedback on what was shown;
- :data:`history_routes`: recommendations for a whole history sent with the request (no session);
- :data:`operation_routes`: health and Prometheus metrics;
- :data:`page_routes`: the page where a person plays the user.

Each endpoint receives the recommender, the session store and the settings through the
dependencies of :mod:`serving.dependencies`. The endpoints are plain ``def``: FastAPI runs them in
its thread pool, so one request's agent call does not hold up the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.responses import HTMLResponse

from recenv.embedding import ModelLoadError
from serving.dependencies import (
    Metrics,
    RecommendationQuery,
    Recommender,
    SessionId,
    Settings,
    Store,
    check_history_length,
    check_items,
    live_session,
    recommendation_query,
)
from serving.metrics import CONTENT_TYPE_LATEST
from serving.recommender import ServedRecommender
from serving.schemas import (
    Feedback,
    FeedbackResult,
    Health,
    HistoryRequest,
    Recommendations,
    RecommendedItem,
    SessionCreated,
    SessionRequest,
    SessionView,
)
from serving.sessions import HistoryFullError, SessionGoneError

__all__ = [
    "API_VERSION",
    "PERSONA_PAST_LENGTH",
    "ROUTERS",
    "history_routes",
    "operation_routes",
    "page_routes",
    "recommendation_routes",
    "session_routes",
]

API_VERSION = "v1"
PERSONA_PAST_LENGTH = 5
"""Items a persona's text becomes: the closest ones, as a past of clicks."""

PAGE = Path(__file__).with_name("static") / "index.html"

session_routes = APIRouter(prefix=f"/{API_VERSION}")
recommendation_routes = APIRouter(prefix=f"/{API_VERSION}")
history_routes = APIRouter(prefix=f"/{API_VERSION}")
operation_routes = APIRouter()
page_routes = APIRouter()


def ranked(recommender: ServedRecommender, observation: np.ndarray, session_items: list[int],
           session_clicks: list[int], k: int, session_id: str | None, steps: int) -> Recommendations:
    """The answer of both recommendation endpoints: the agent's top ``k`` for ``observation``."""
    items, scores = recommender.rank(observation, session_items, k, session_clicks)
    return Recommendations(session_id=session_id, session_steps=steps, score=recommender.served.score_name, items=[
        RecommendedItem(item_id=int(i), title=recommender.titles[i],
                        topic=recommender.topic_names[recommender.item_topics[i]], score=float(s))
        for i, s in zip(items, scores)
    ])


# ---------------------------------------------------------------- sessions


@session_routes.post("/sessions", status_code=201, response_model=SessionCreated)
def create_session(body: SessionRequest, recommender: Recommender, store: Store) -> SessionCreated:
    if body.persona is not None:
        try:
            items = recommender.persona_history(body.persona, min(PERSONA_PAST_LENGTH, store.max_history))
        except (ModelLoadError, OSError) as error:
            raise HTTPException(503, f"the language model that reads personas could not be loaded: {error}") from None
        clicks = [1] * len(items)
    else:
        check_history_length(store, len(body.items))
        check_items(recommender, body.items, "items")
        items, clicks = body.items, body.clicks
    session = store.create(items, clicks, recommender.start(items, clicks))
    return SessionCreated(session_id=session.session_id, past_length=session.past_length,
                          idle_timeout_s=store.idle_timeout)


@session_routes.get("/sessions/{session_id}", response_model=SessionView)
def read_session(session_id: SessionId, recommender: Recommender, store: Store) -> SessionView:
    session = live_session(store, session_id)
    with session.lock:  # a consistent copy; the encoder runs after, not holding up feedback
        past, state = session.past_length, session.observer_state
        items, clicks = list(session.items), list(session.clicks)
    return SessionView(
        session_id=session.session_id, past_items=items[:past], past_clicks=clicks[:past], items=items[past:],
        clicks=clicks[past:], session_steps=len(items) - past, session_clicks=sum(clicks[past:]),
        interest_by_topic=recommender.interest_by_topic(state),
    )


@session_routes.delete("/sessions/{session_id}", status_code=204)
def delete_session(session_id: SessionId, store: Store) -> Response:
    try:
        store.delete(session_id)
    except SessionGoneError as error:
        raise HTTPException(404, str(error)) from None
    return Response(status_code=204)


# ---------------------------------------------------------------- a session's recommendations and feedback


@recommendation_routes.get("/sessions/{session_id}/recommendations", response_model=Recommendations)
def recommend(query: Annotated[RecommendationQuery, Depends(recommendation_query)], recommender: Recommender,
              store: Store) -> Recommendations:
    session = live_session(store, query.session_id)
    with session.lock:
        observation = recommender.observer.observe(session.observer_state, session.items, session.clicks,
                                                   session.session_steps, session.session_clicks)
        past = session.past_length
        shown, clicks, steps = session.items[past:], session.clicks[past:], session.session_steps
    return ranked(recommender, observation, shown, clicks, query.k, session.session_id, steps)


@recommendation_routes.post("/sessions/{session_id}/feedback", response_model=FeedbackResult)
def feedback(session_id: SessionId, body: Feedback, recommender: Recommender, store: Store) -> FeedbackResult:
    check_items(recommender, [body.item_id], "item_id")
    session = live_session(store, session_id)
    try:
        steps, clicks = store.record(session, body.item_id, int(body.clicked), recommender.observer.advance)
    except HistoryFullError as error:
        raise HTTPException(409, str(error)) from None
    return FeedbackResult(session_id=session.session_id, session_steps=steps, session_clicks=clicks)


# ---------------------------------------------------------------- a whole history, no session


@history_routes.post("/recommendations", response_model=Recommendations)
def recommend_from_history(body: HistoryRequest, recommender: Recommender, store: Store,
                           settings: Settings) -> Recommendations:
    if body.k > settings.max_k:
        raise HTTPException(422, f"k must be between 1 and {settings.max_k}, got {body.k}")
    check_history_length(store, len(body.items))
    check_items(recommender, body.items, "items")
    past = len(body.items) - body.session_length
    state = recommender.start(body.items[:past], body.clicks[:past])
    for item, click in zip(body.items[past:], body.clicks[past:]):
        state = recommender.observer.advance(state, item, click)
    observation = recommender.observer.observe(state, body.items, body.clicks, body.session_length,
                                               sum(body.clicks[past:]))
    return ranked(recommender, observation, body.items[past:], body.clicks[past:], body.k, None, body.session_length)


# ---------------------------------------------------------------- operations


@operation_routes.get(f"/{API_VERSION}/health", response_model=Health)
def health(recommender: Recommender, store: Store) -> Health:
    return Health(status="ok", agent=recommender.describe(), sessions=len(store), max_sessions=store.max_sessions)


@operation_routes.get("/metrics", include_in_schema=False)
def prometheus_metrics(metrics: Metrics) -> Response:
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


# ---------------------------------------------------------------- the page


@page_routes.get("/", include_in_schema=False, response_class=HTMLResponse)
def page() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))


ROUTERS = (session_routes, recommendation_routes, history_routes, operation_routes, page_routes)
"""Every router, in the order :func:`serving.api.create_app` includes them."""
