"""ConsumptionHistories of simulated users who choose items themselves, comparable with real logs.

A real log (MovieLens) records what users chose to consume, not what a recommender pushed at them.
The like-for-like simulated history is therefore *organic browsing*, the same step as the organic
share of the warm-up in :mod:`recenv.simulator` (both call :func:`recenv.dynamics.browse_page`): at
every step the user sees a page of ``page_size`` items drawn uniformly from the catalog and opens
one, drawn with probability ∝ exp(u) (the softmax of their click logits on the page); the click is
then sampled with P = σ(u) as always, and the state updated by the user model. Only clicked
(consumed) items enter the history, as only watched movies enter MovieLens. Drift (exogenous, regime
shifts) acts on every step, clicked or not, exactly as in the environment; patience plays no part
(nobody leaves a catalog they browse on their own).

Users start from the population prior (no warm-up: a real history starts with the user's first
rating). User ``u`` is simulated until their history holds ``lengths[u]`` items, or until
``max_steps_per_item · lengths[u]`` steps have passed (a user who almost never clicks ends shorter).
All randomness comes from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

import numpy as np
import torch

from recenv.catalog import Catalog
from recenv.config import EnvConfig
from recenv.dynamics import (
    ItemTable,
    UserState,
    browse_page,
    click_logits,
    click_logits_all,
    interest_from_prior,
    sample_prior_noise,
    sample_step_noise,
)
from recenv.consumption_histories import ConsumptionHistories
from recenv.params import UserModelParams

__all__ = ["simulate_organic_histories"]

_WHOLE_CATALOG_ITEMS_PER_PAGE = 8
"""Catalogs of up to this many items per page slot are scored whole, then the page is picked out."""


def simulate_organic_histories(
    catalog: Catalog | ItemTable,
    params: UserModelParams,
    lengths: np.ndarray,
    generator: torch.Generator,
    page_size: int = EnvConfig.warmup_page_size,
    max_steps_per_item: int = 20,
) -> ConsumptionHistories:
    """Organic histories (see the module docstring) of ``len(lengths)`` fresh users.

    :param catalog: the items (a :class:`Catalog`, or its :class:`ItemTable` on the generator's device).
    :param params: the user model.
    :param lengths: ``(U,)`` how many consumed items each history should hold (e.g. the real lengths).
    :param generator: the source of all randomness; its device is the simulation's device.
    :param page_size: items on the page a user chooses from at each step.
    :param max_steps_per_item: give up on a user after this many steps per wanted item.
    :return: the histories, user ``u``'s holding ``lengths[u]`` items (fewer if they gave up).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.ndim != 1 or len(lengths) == 0 or lengths.min() < 0:
        raise ValueError(f"lengths must be a non-empty 1-D array of counts >= 0, got shape {lengths.shape}")
    if page_size < 1 or max_steps_per_item < 1:
        raise ValueError(f"page_size and max_steps_per_item must be >= 1, got {page_size} and {max_steps_per_item}")
    device = generator.device
    items = catalog if isinstance(catalog, ItemTable) else ItemTable.from_catalog(catalog, device)
    num_users, longest = len(lengths), int(lengths.max())
    # Scoring a page item by item costs more than one matrix product over a small catalog and less
    # over a large one (measured on CPU: docs/results/tuning-notes.md); both are the same equation.
    whole_catalog = items.num_items <= _WHOLE_CATALOG_ITEMS_PER_PAGE * page_size

    with torch.inference_mode():
        prior = sample_prior_noise(generator, num_users, items, params)
        state = UserState.start(interest_from_prior(prior, items, params), params)
        history = torch.full((num_users, max(longest, 1)), -1, dtype=torch.int64, device=device)
        count = torch.zeros(num_users, dtype=torch.int64, device=device)
        wanted = torch.as_tensor(lengths, device=device)
        active = torch.arange(num_users, device=device)  # users still browsing; state rows follow it
        budget = wanted * max_steps_per_item
        step = 0
        while len(active):
            n = len(active)
            page = torch.randint(items.num_items, (n, page_size), generator=generator, device=device)
            if whole_catalog:
                page_logits = click_logits_all(state, items, params).gather(1, page)
            else:
                page_logits = click_logits(state, page, items, params)
            choice_uniform = torch.rand(n, generator=generator, device=device)
            noise = sample_step_noise(generator, n, items, params)
            shown, click, state = browse_page(state, page, page_logits, choice_uniform, noise, items, params)
            kept = (click > 0.5) & (count[active] < wanted[active])
            users = active[kept]
            history[users, count[users]] = shown[kept]
            count[users] += 1
            step += 1
            going = (count[active] < wanted[active]) & (step < budget[active])
            if not bool(going.all()):
                # Finished users leave the batch, so the long histories do not cost the short ones' steps.
                state, active = state.select(going), active[going]
    return ConsumptionHistories.from_padded(history.cpu().numpy(), count.cpu().numpy())
