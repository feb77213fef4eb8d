"""Reset options: text personas and scripted interest shifts.

``env.reset(options={"persona": "loves space documentaries"})`` starts the user with the interest
``θ0 = z(persona)``: the text is embedded by the catalog's language model and projected like an
item (``normalize(W·(e − ē))``). ``options={"shifts": [(50, "now into baking bread")]}`` sets the
interest to the latent of the text when the session reaches that step. Instead of a text, a vector
of the latent size k or the embedding size D is accepted wherever a text is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from recenv.catalog import Catalog

__all__ = ["RESET_OPTIONS", "ResetOptions", "parse_reset_options"]

RESET_OPTIONS = ("persona", "shifts")


class ResetOptions:
    """Parsed reset options: a persona latent ``(k,)`` or ``None``, and ``[(step, latent (k,))]``."""

    def __init__(self, persona: Tensor | None = None, shifts: list[tuple[int, Tensor]] | None = None):
        self.persona = persona
        self.shifts = shifts or []


def _interest_of(value: Any, catalog: Catalog, what: str) -> Tensor:
    if isinstance(value, str):
        return torch.as_tensor(catalog.latent_of_text(value))
    vector = np.asarray(value, dtype=np.float32)
    if vector.ndim != 1 or vector.shape[0] not in (catalog.latent_dim, catalog.embedding_dim):
        raise ValueError(
            f"{what} must be a text, a latent of size {catalog.latent_dim} or an embedding of size "
            f"{catalog.embedding_dim}; got {type(value).__name__} of shape {vector.shape}"
        )
    if not np.all(np.isfinite(vector)) or not np.any(vector):
        raise ValueError(f"{what} must be finite and non-zero")
    if vector.shape[0] == catalog.embedding_dim and catalog.embedding_dim != catalog.latent_dim:
        return torch.as_tensor(catalog.project(vector / np.linalg.norm(vector)))
    return torch.as_tensor(vector / np.linalg.norm(vector))


def parse_reset_options(options: Mapping[str, Any] | None, catalog: Catalog) -> ResetOptions:
    """Check and resolve ``reset(options=...)``; errors name the bad key or value."""
    if options is None:
        return ResetOptions()
    if not isinstance(options, Mapping):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    unknown = sorted(set(options) - set(RESET_OPTIONS))
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown}; allowed: {list(RESET_OPTIONS)}")
    persona = options.get("persona")
    parsed = ResetOptions(None if persona is None else _interest_of(persona, catalog, "options['persona']"))
    shifts = options.get("shifts") or []
    if isinstance(shifts, (str, bytes)) or not hasattr(shifts, "__iter__"):
        raise TypeError("options['shifts'] must be a list of (step, text) pairs")
    for position, entry in enumerate(shifts):
        if not isinstance(entry, (tuple, list)) or len(entry) != 2:
            raise ValueError(f"options['shifts'][{position}] must be a (step, text) pair, got {entry!r}")
        step, target = entry
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
            raise ValueError(f"options['shifts'][{position}] has step {step!r}; expected an int >= 1")
        parsed.shifts.append((int(step), _interest_of(target, catalog, f"options['shifts'][{position}]")))
    return parsed
