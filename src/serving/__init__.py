"""Serve a trained recenv agent over HTTP: sessions, recommendations, feedback, a page to play the user.

``python -m serving [--agent PATH]`` (or ``recenv serve``) starts the service on 127.0.0.1:8000;
:func:`create_app` builds the FastAPI app for a :class:`ServedRecommender` and a
:class:`SessionStore`. The service sits above ``agents`` (it loads them) and beside
``benchmarks``; ``recenv`` knows nothing of it. Needs the ``[serve]`` extra.
"""

from serving.api import create_app
from serving.recommender import SERVED_AGENTS, AgentFileError, ServedRecommender, UnservableAgentError
from serving.sessions import SessionStore

__all__ = ["SERVED_AGENTS", "AgentFileError", "ServedRecommender", "SessionStore", "UnservableAgentError", "create_app"]
