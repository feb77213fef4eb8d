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
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from recenv.embedding import ModelLoadError
from serving.metrics import CONTENT_TYPE_LATEST, ServiceMetrics
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
from serving.sessions import HistoryFullError, ServedSession, SessionGoneError, SessionStore

__all__ = ["API_VERSION", "PERSONA_PAST_LENGTH", "create_app"]

API_VERSION = "v1"
PERSONA_PAST_LENGTH = 5
"""Items a persona's text becomes: the closest ones, as a past of clicks."""

PAGE = Path(__file__).with_name("static") / "index.html"
SessionId = Annotated[str, PathParam(max_length=64, description="the id POST /v1/sessions returned")]


def create_app(recommender: ServedRecommender, store: SessionStore | None = None, max_k: int = 100) -> FastAPI:
    """The service for one loaded recommender.

    :param store: the session store (default: :class:`SessionStore` with its defaults).
    :param max_k: the most items one recommendation may ask for (capped at the catalog's size).
    """
    store = store if store is not None else SessionStore()
    max_k = min(max_k, recommender.num_items)
    metrics = ServiceMetrics(lambda: len(store), lambda: (store.expired, store.evicted))
    app = FastAPI(title="recenv recommender", version=API_VERSION,
                  description="A trained recenv agent served over HTTP (sessions, recommendations, feedback).")
    app.state.recommender, app.state.store, app.state.metrics = recommender, store, metrics

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        started = time.perf_counter()
        status = 500  # counted as such if the app raises
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            metrics.observe(getattr(route, "path", "unmatched"), request.method, status, time.perf_counter() - started)

    # ---------------------------------------------------------------- checks

    def check_items(items: list[int], where: str) -> None:
        bad = [item for item in items if not 0 <= item < recommender.num_items]
        if bad:
            raise HTTPException(422, f"unknown item id{'s' if len(bad) > 1 else ''} {bad[:10]} in {where}: "
                                     f"ids run from 0 to {recommender.num_items - 1}")

    def check_history_length(length: int) -> None:
        if length > store.max_history:
            raise HTTPException(422, f"a history of {length} interactions is longer than the limit of {store.max_history}")

    def live(session_id: str) -> ServedSession:
        try:
            return store.get(session_id)
        except SessionGoneError as error:
            raise HTTPException(404, str(error)) from None

    def recommendations(observation, session_items: list[int], session_clicks: list[int], k: int,
                        session_id: str | None, steps: int) -> Recommendations:
        items, scores = recommender.rank(observation, session_items, k, session_clicks)
        return Recommendations(session_id=session_id, session_steps=steps, score=recommender.served.score_name, items=[
            RecommendedItem(item_id=int(i), title=recommender.titles[i], topic=recommender.topic_names[recommender.item_topics[i]],
                            score=float(s))
            for i, s in zip(items, scores)
        ])

    # ---------------------------------------------------------------- sessions

    @app.post(f"/{API_VERSION}/sessions", status_code=201, response_model=SessionCreated)
    def create_session(body: SessionRequest) -> SessionCreated:
        if body.persona is not None:
            try:
                items = recommender.persona_history(body.persona, min(PERSONA_PAST_LENGTH, store.max_history))
            except (ModelLoadError, OSError) as error:
                raise HTTPException(503, f"the language model that reads personas could not be loaded: {error}") from None
            clicks = [1] * len(items)
        else:
            check_history_length(len(body.items))
            check_items(body.items, "items")
            items, clicks = body.items, body.clicks
        session = store.create(items, clicks, recommender.start(items, clicks))
        return SessionCreated(session_id=session.session_id, past_length=session.past_length,
                              idle_timeout_s=store.idle_timeout)

    @app.get(f"/{API_VERSION}/sessions/{{session_id}}", response_model=SessionView)
    def read_session(session_id: SessionId) -> SessionView:
        session = live(session_id)
        with session.lock:  # a consistent copy; the encoder runs after, not holding up feedback
            past, items, clicks, state = session.past_length, list(session.items), list(session.clicks), session.observer_state
        return SessionView(
            session_id=session.session_id, past_items=items[:past], past_clicks=clicks[:past], items=items[past:],
            clicks=clicks[past:], session_steps=len(items) - past, session_clicks=sum(clicks[past:]),
            interest_by_topic=recommender.interest_by_topic(state),
        )

    @app.get(f"/{API_VERSION}/sessions/{{session_id}}/recommendations", response_model=Recommendations)
    def recommend(session_id: SessionId, k: int = Query(10, ge=1, le=max_k, description=f"how many items, 1 to {max_k}")) -> Recommendations:
        session = live(session_id)
        with session.lock:
            observation = recommender.observer.observe(session.observer_state, session.items, session.clicks,
                                                       session.session_steps, session.session_clicks)
            past = session.past_length
            shown, clicks, steps = session.items[past:], session.clicks[past:], session.session_steps
        return recommendations(observation, shown, clicks, k, session.session_id, steps)

    @app.post(f"/{API_VERSION}/sessions/{{session_id}}/feedback", response_model=FeedbackResult)
    def feedback(session_id: SessionId, body: Feedback) -> FeedbackResult:
        check_items([body.item_id], "item_id")
        session = live(session_id)
        try:
            steps, clicks = store.record(session, body.item_id, int(body.clicked), recommender.observer.advance)
        except HistoryFullError as error:
            raise HTTPException(409, str(error)) from None
        return FeedbackResult(session_id=session.session_id, session_steps=steps, session_clicks=clicks)

    @app.delete(f"/{API_VERSION}/sessions/{{session_id}}", status_code=204)
    def delete_session(session_id: SessionId) -> Response:
        try:
            store.delete(session_id)
        except SessionGoneError as error:
            raise HTTPException(404, str(error)) from None
        return Response(status_code=204)

    # ---------------------------------------------------------------- stateless

    @app.post(f"/{API_VERSION}/recommendations", response_model=Recommendations)
    def recommend_from_history(body: HistoryRequest) -> Recommendations:
        if body.k > max_k:
            raise HTTPException(422, f"k must be between 1 and {max_k}, got {body.k}")
        check_history_length(len(body.items))
        check_items(body.items, "items")
        past = len(body.items) - body.session_length
        state = recommender.start(body.items[:past], body.clicks[:past])
        for item, click in zip(body.items[past:], body.clicks[past:]):
            state = recommender.observer.advance(state, item, click)
        observation = recommender.observer.observe(state, body.items, body.clicks, body.session_length,
                                                   sum(body.clicks[past:]))
        return recommendations(observation, body.items[past:], body.clicks[past:], body.k, None, body.session_length)

    # ---------------------------------------------------------------- operations

    @app.get(f"/{API_VERSION}/health", response_model=Health)
    def health() -> Health:
        return Health(status="ok", agent=recommender.describe(), sessions=len(store), max_sessions=store.max_sessions)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    return app
