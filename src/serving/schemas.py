"""The API's request and response bodies (pydantic): strict types, unknown fields refused.

Checks that need the loaded catalog (item ids in range) and the store's limits (history length)
are made by the endpoints, which answer 422 naming the bad value.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

__all__ = [
    "Feedback",
    "FeedbackResult",
    "Health",
    "HistoryRequest",
    "Recommendations",
    "RecommendedItem",
    "SessionCreated",
    "SessionRequest",
    "SessionView",
    "TopicInterest",
]

PERSONA_MAX_CHARS = 500

Click = Annotated[StrictInt, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _History(_Strict):
    items: list[StrictInt] = Field(default_factory=list, description="item ids, oldest first")
    clicks: list[Click] = Field(default_factory=list, description="0/1 per item: clicked or not")

    @model_validator(mode="after")
    def _same_length(self) -> _History:
        if len(self.items) != len(self.clicks):
            raise ValueError(f"items and clicks must have the same length, got {len(self.items)} and {len(self.clicks)}")
        return self


class SessionRequest(_History):
    """A new session: from a past history (``items``/``clicks``), a persona text, or neither."""

    persona: Annotated[StrictStr, Field(min_length=1, max_length=PERSONA_MAX_CHARS)] | None = Field(
        default=None, description="a free text of the user's interests; its closest items become the past")

    @model_validator(mode="after")
    def _one_source(self) -> SessionRequest:
        if self.persona is not None and self.items:
            raise ValueError("give a past history (items, clicks) or a persona, not both")
        if self.persona is not None and not self.persona.strip():
            raise ValueError("persona must not be blank")
        return self


class HistoryRequest(_History):
    """Stateless recommendation from a whole history; its last ``session_length`` interactions are
    the current session (counted by the session clock, and not re-shown by agents that never
    repeat an item in a session)."""

    session_length: StrictInt = Field(default=0, ge=0)
    k: StrictInt = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _session_in_history(self) -> HistoryRequest:
        if self.session_length > len(self.items):
            raise ValueError(f"session_length {self.session_length} is longer than the history ({len(self.items)})")
        return self


class Feedback(_Strict):
    """The user was shown ``item_id`` and clicked it or not."""

    item_id: StrictInt
    clicked: StrictBool


class SessionCreated(BaseModel):
    session_id: str
    past_length: int
    idle_timeout_s: float


class RecommendedItem(BaseModel):
    item_id: int
    title: str
    topic: str
    score: float


class Recommendations(BaseModel):
    session_id: str | None
    session_steps: int
    score: str = Field(description="what the scores are (the agent's own)")
    items: list[RecommendedItem]


class FeedbackResult(BaseModel):
    session_id: str
    session_steps: int
    session_clicks: int


class TopicInterest(BaseModel):
    topic: str
    p_click: float


class SessionView(BaseModel):
    session_id: str
    past_items: list[int]
    past_clicks: list[int]
    items: list[int] = Field(description="this session's shown items, oldest first")
    clicks: list[int]
    session_steps: int
    session_clicks: int
    interest_by_topic: list[TopicInterest] | None = Field(
        description="the encoder's estimate: mean predicted P(click) of each topic's items")


class Health(BaseModel):
    status: str
    agent: dict
    sessions: int
    max_sessions: int
