"""Built-in simulated benchmarks: ``pets``, ``pets-ood``, ``hh-users``, ``contexts``.

Every pair's ``chosen``/``rejected`` is *sampled* from the user's Bradley-Terry probability and ``p_chosen`` records
the true probability of the sampled outcome, so labels are exactly as noisy as the simulator says and
``Suite.bayes_accuracy`` (mean of ``max(p, 1 - p)``) is the best accuracy any model can expect.

What each suite tests:

- ``pets`` (like VPL/PLUS Pets): each user loves one of six animals; prompts ask for a pet suggestion, a story, a
  fact...; the two responses are the same template about two different animals. Users come in blocks of one user per
  animal, and in each slot a block is shown pairs along a random perfect matching of the animals, so every pair
  instance is labelled once by each of its two animals' lovers: all pairs are contested and a population model
  (no user information) can do no better than 50%.
- ``pets-ood``: training users love one of cats/dogs/birds/fish *and* want concise or detailed answers; they see
  the ``A`` templates, where half their pairs contrast two animals and half contrast a short and a long version of
  one answer (the long one adds a sentence from extras set ``A``). ``new_user_ids`` are shifted users and content:
  their favourite animal is any of eight (rabbits, hamsters, turtles and horses never appear in training pairs),
  and all their pairs use the prompts, templates and length extras of set ``B`` (poem, pros/cons, travel...), unseen in training. Half their pairs contrast animals, half contrast a
  short and a long version of one answer about a third animal. They come in mirrored couples (two animals, opposite
  length preferences) labelling the same pairs.
- ``hh-users`` (like UltraFeedback-P-2): real HH-RLHF test pairs labelled by helpfulness-first and
  harmlessness-first attribute users (utility ``6*helpfulness + 2*safety + 1.5*[HH raters preferred it on a
  helpful-* pair]`` and ``2*helpfulness + 6*safety + 1.5*[... on a harmless-base pair]``, rules in
  ``features.py``). The BT temperature is calibrated so the Bayes accuracy hits ``target_bayes`` (0.70: set by
  noise); ``stats['contested_frac']`` is the share of pool pairs where the two user types prefer different responses
  (0.75 by construction when the data has enough; the rest are pairs both types rank the same way).
- ``contexts``: four-dimension personas (animal, length, emoji, register) who also leave unlabelled past
  ``conversations`` (messages that reveal their animal and phrasing) and a noisy self-description ``profile``
  (written from the hidden persona: this is the one suite about self-descriptions, ``Suite.self_descriptions``
  says so, and bench reports carry it; the other suites write no profile); each
  labelled pair varies one dimension. Users come in mirrored couples (two different animals, opposite style levels)
  who label the same pairs, so every pair is contested. A consumer may build a user's context from pairs,
  conversations or profile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np

from pluralign.sim.attributes import build_attributes
from pluralign.sim.contexts import build_contexts
from pluralign.sim.hh_users import build_hh_users
from pluralign.sim.pets import build_pets, build_pets_ood
from pluralign.sim.suite import Suite, bayes_accuracy, population_accuracy

# Suite, bayes_accuracy and population_accuracy live in pluralign.sim.suite; importers of them from here keep working.
__all__ = ["SUITES", "Suite", "bayes_accuracy", "build_suite", "population_accuracy"]

SUITES = ("pets", "pets-ood", "hh-users", "contexts", "attributes")

_BUILDERS: dict[str, Callable[[int, bool], Suite]] = {
    "pets": build_pets, "pets-ood": build_pets_ood, "hh-users": build_hh_users, "contexts": build_contexts,
    "attributes": build_attributes,
}


def build_suite(name: str, seed: int = 0, quick: bool = False) -> Suite:
    """Build a simulated benchmark (deterministic given ``seed``). ``quick`` gives a tiny version for tests."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown suite {name!r}; expected one of {', '.join(SUITES)}")
    suite = _BUILDERS[name](seed, quick)
    suite.bayes_accuracy = bayes_accuracy(suite.users)
    suite.stats.setdefault("population_accuracy", population_accuracy(suite.users))
    # Bayes accuracy per kind of contrast and for fixed new users, where the suite has them.
    by_contrast: dict[str, list[float]] = defaultdict(list)
    new = set(suite.new_user_ids)
    for u in suite.users:
        for p in u.pairs:
            if p.p_chosen is None:
                continue
            hi = max(p.p_chosen, 1 - p.p_chosen)
            if "contrast" in p.meta:
                by_contrast[f"bayes_{p.meta['contrast']}"].append(hi)
            if new:
                by_contrast["bayes_new_users" if u.user_id in new else "bayes_train_users"].append(hi)
    for key, vals in sorted(by_contrast.items()):
        suite.stats[key] = float(np.mean(vals))
    suite.stats["users"] = float(len(suite.users))
    suite.stats["pairs"] = float(suite.n_pairs())
    return suite
