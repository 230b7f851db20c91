"""Personalisation a user can feel, with a real chat model: answers written with the user's summary in the prompt.

The PLUS paper's transfer result (GPT-4o answers conditioned on PLUS summaries won 72% vs 28% against default
GPT-4o), done with a model we have. For each new user (one context per user) and up to ``prompts_per_user`` of the
user's own held-out prompts, the chat model answers with the same sampling seed three times: with the user's
RL-trained summary in the system prompt, with no summary, and with the zero-shot summary of the same LLM. The
simulated user's ground-truth utility (a scorer, never shown to a method) judges each pair of answers: win, loss or
tie. Best-of-N: ``best_of`` answers sampled with no summary, one picked by the summary-conditioned RM reading the
user's summary and one by a user-blind RM (the bench's ``bt``, trained on the same pairs), judged the same way.

Records (split ``new-users``), each a win rate = wins / (wins + losses) with a 95% cluster-bootstrap CI over users
and its tie rate beside it: ``transfer_win_rate`` (RL-trained summary vs no summary),
``transfer_win_rate_vs_untrained`` (vs the zero-shot summary) and ``best_of_n_win_rate`` (summary-conditioned RM vs
user-blind RM picking among the chat model's samples).

The chat model is the summarizer's own base LLM (SmolLM2-135M-Instruct on CPU) with its LoRA adapter switched off:
the same weights ``pluralign serve-chat`` serves. The bench generates in-process
(:func:`pluralign.models.generation.generate_texts`) rather than over HTTP so that a bench run needs no server; the
served path samples with the same code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from pluralign.data.splits import Example
from pluralign.evaluation.methods import make_method
from pluralign.evaluation.results import Result, bootstrap_ci
from pluralign.models.generation import generate_texts
from pluralign.sim.suites import build_suite
from pluralign.training.rm_config import RMConfig

SYSTEM = "You are a helpful assistant."
SYSTEM_WITH_SUMMARY = (SYSTEM + " Here is a summary of this user's preferences, written from their past "
                       "conversations: {summary} Keep it in mind to personalise your answer.")


def chat_messages(prompt: str, summary: str | None) -> list[dict]:
    """The chat request: the summary (if any) in the system prompt, the user's prompt as the user turn."""
    system = SYSTEM_WITH_SUMMARY.format(summary=summary.strip()) if summary and summary.strip() else SYSTEM
    return [{"role": "system", "content": system}, {"role": "user", "content": prompt}]


def win_rate_result(benchmark: str, method: str, metric: str, outcomes: Sequence[float], users: Sequence[str],
                    *, seed: int = 0, split: str = "new-users") -> list[Result]:
    """``metric`` = wins / (wins + losses) with a cluster-bootstrap CI over users, and ``<metric>_ties``."""
    arr = np.asarray(outcomes, dtype=float)

    def rate(a: np.ndarray) -> float:
        decided = (a != 0).sum()
        return float((a > 0).sum() / decided) if decided else float("nan")

    lo, hi = bootstrap_ci(arr, rate, clusters=list(users), seed=seed) if len(arr) else (float("nan"),) * 2
    n_users = len(set(users))
    return [Result(benchmark, method, split, metric, rate(arr), int((arr != 0).sum()), lo, hi, ci_unit="user",
                   n_users=n_users),
            Result(benchmark, method, split, f"{metric}_ties", float((arr == 0).mean()) if len(arr) else float("nan"),
                   len(arr), ci_unit="user", n_users=n_users)]


def win_rate_items(outcomes: Sequence[float], users: Sequence[str]) -> dict[str, list]:
    """The decided outcomes as per-item values (win 1, loss 0; ties left out, as the rate leaves them out), so that
    their mean is the win rate and seeds pool like accuracy (``items`` of the bench stages)."""
    kept = [(u, 1.0 if o > 0 else 0.0) for o, u in zip(outcomes, users, strict=True) if o != 0]
    return {"user_ids": [u for u, _ in kept], "values": [v for _, v in kept]}


def _outcome(u_a: float, u_b: float) -> float:
    return 1.0 if u_a > u_b + 1e-9 else (-1.0 if u_b > u_a + 1e-9 else 0.0)


def transfer_eval(benchmark: str, plus: Any, examples: Sequence[Example], simulated: dict[str, Any], *,
                  blind: Any = None, seed: int = 0, prompts_per_user: int = 2, best_of: int = 8,
                  max_new_tokens: int = 64, temperature: float = 0.7, max_users: int | None = None,
                  items: dict[str, dict] | None = None) -> tuple[list[Result], list[dict]]:
    """Records and a few shown examples. ``plus`` is a fitted ``plus`` method (its ``summarizer`` is an ``hf``
    summarizer with a LoRA adapter, its ``model`` the summary-conditioned RM); ``blind`` a fitted user-blind method
    (``.model``) for best-of-N, skipped when None; ``simulated[user_id].utility(prompt, response)`` judges.
    ``items``, when given, receives each win rate's decided outcomes (metric → ``new-users`` →
    :func:`win_rate_items`) for pooling over seeds."""
    firsts: dict[str, Example] = {}
    prompts: dict[str, list[str]] = {}
    for e in examples:
        firsts.setdefault(e.user_id, e)
        ps = prompts.setdefault(e.user_id, [])
        if e.target.prompt not in ps and len(ps) < prompts_per_user:
            ps.append(e.target.prompt)
    users = [u for u in sorted(firsts) if u in simulated][:max_users]
    if not users:
        raise ValueError("transfer: no example user has a simulated ground truth to judge by")
    exs = [firsts[u] for u in users]
    trained = dict(zip(users, plus.conditionings(exs), strict=True))
    zero_shot = dict(zip(users, plus.initial_summaries(exs), strict=True))
    s = plus.summarizer
    asks = [(u, p) for u in users for p in prompts[u]]
    initial = s.initial_model() if hasattr(s, "initial_model") else contextlib.nullcontext()
    answers: dict[str, list[str]] = {}
    with initial:
        for name, summ in (("trained", trained), ("none", None), ("zero_shot", zero_shot)):
            msgs = [chat_messages(p, summ[u] if summ else None) for u, p in asks]
            out = generate_texts(s.model, s.tokenizer, msgs, n=1, max_new_tokens=max_new_tokens,
                                 temperature=temperature, seed=seed)  # same seed: only the system prompt differs
            answers[name] = [o[0] if o else "" for o in out]
        pools = []
        if blind is not None and best_of > 1:
            pools = generate_texts(s.model, s.tokenizer, [chat_messages(p, None) for _, p in asks], n=best_of,
                                   max_new_tokens=max_new_tokens, temperature=temperature, seed=seed + 1)
    util = [lambda text, u=u, p=p: simulated[u].utility(p, text) for u, p in asks]
    ids = [u for u, _ in asks]
    outcomes = {
        "transfer_win_rate": [_outcome(f(a), f(b)) for f, a, b in
                              zip(util, answers["trained"], answers["none"], strict=True)],
        "transfer_win_rate_vs_untrained": [_outcome(f(a), f(b)) for f, a, b in
                                           zip(util, answers["trained"], answers["zero_shot"], strict=True)]}
    if pools:
        picks = []
        for (u, p), cands in zip(asks, pools, strict=True):
            cands = [c for c in cands if c.strip()] or [""]
            with_z = plus.model.score([p] * len(cands), cands, [trained[u]] * len(cands))
            without = blind.model.score([p] * len(cands), cands, None)
            picks.append((cands[int(np.argmax(with_z))], cands[int(np.argmax(without))]))
        outcomes["best_of_n_win_rate"] = [_outcome(f(a), f(b)) for f, (a, b) in zip(util, picks, strict=True)]
    results = [r for metric, out in outcomes.items()
               for r in win_rate_result(benchmark, plus.name, metric, out, ids, seed=seed)]
    if items is not None:
        for metric, out in outcomes.items():
            items.setdefault(metric, {})["new-users"] = win_rate_items(out, ids)
    shown = [{"user_id": u, "prompt": p, "summary": trained[u], "zero_shot_summary": zero_shot[u],
              "with_summary": a, "no_summary": b, "outcome": {1.0: "win", -1.0: "loss", 0.0: "tie"}[o]}
             for (u, p), a, b, o in zip(asks, answers["trained"], answers["none"], outcomes["transfer_win_rate"],
                                        strict=True)][:6]
    return results, shown


def bench_transfer(benchmark: str, plus: Any, split: Any, new_users: Sequence[Example], *, seed: int, quick: bool,
                   rm_config: RMConfig, blind: Any = None, items: dict[str, dict] | None = None) -> list[Result]:
    """The bench's transfer records for a fitted ``plus`` on a simulated suite: rebuilds the suite (seeded, so the
    same users) for its simulated users; best-of-N's user-blind RM is ``blind`` (anything with ``.model``, e.g. the
    run's own fitted ``bt``) or else a ``bt`` RM fitted here on the same training pairs with ``rm_config``."""
    suite = build_suite(benchmark, seed=seed, quick=quick)
    if blind is None:
        blind = make_method("bt", rm_config=rm_config, quick=quick)
        blind.fit(split.train, seed=seed)
    results, _ = transfer_eval(benchmark, plus, new_users, suite.simulated, blind=blind, seed=seed,
                               prompts_per_user=2 if quick else 3, best_of=8, max_users=24 if quick else None,
                               items=items)
    return results
