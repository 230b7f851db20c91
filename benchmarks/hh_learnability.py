"""How learnable is the hh-users ground truth from frozen MiniLM features? (a diagnostic for the hh-users misses)

For N real HH-RLHF test pairs, the *noise-free* label of each user type is the sign of its utility difference
(``Persona.utility``: helpfulness, safety and the raters' label, the rules in ``sim/features.py``). A linear head and
a 2-layer MLP head are trained per type on frozen, mean-pooled all-MiniLM-L6-v2 embeddings of (prompt, response)
with the Bradley-Terry loss on 75% of the pairs, and scored on the other 25%. If even noise-free labels are hard to
fit from these features, the noisy, smaller hh-users suite cannot be learned by a small-budget RM either.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/hh_learnability.py --pairs 6000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def embed(rm, prompts: list[str], responses: list[str], batch_size: int = 64) -> torch.Tensor:
    """Mean-pooled last hidden states of the RM's own (prompt, response) encoding, bf16 autocast, no gradients."""
    out = []
    for i in range(0, len(prompts), batch_size):
        enc = rm.encode(prompts[i:i + batch_size], responses[i:i + batch_size], None)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            h = rm.backbone(**enc.batch).last_hidden_state
        m = enc.batch["attention_mask"].unsqueeze(-1).float()
        out.append((h.float() * m).sum(1) / m.sum(1))
    return torch.cat(out)


def fit_and_score(xc: torch.Tensor, xr: torch.Tensor, y: torch.Tensor, n_train: int, hidden: int,
                  epochs: int = 500, seed: int = 0) -> tuple[float, float]:
    """Full-batch BT training of a head on embedding pairs; accuracy against the noise-free sign (ties skipped)."""
    torch.manual_seed(seed)
    dim = xc.shape[1]
    head = torch.nn.Linear(dim, 1) if hidden == 0 else torch.nn.Sequential(
        torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, 1))
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
    tr = slice(0, n_train)
    for _ in range(epochs):
        d = (head(xc[tr]) - head(xr[tr])).squeeze(-1)
        loss = -torch.nn.functional.logsigmoid(d * y[tr]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        d = (head(xc) - head(xr)).squeeze(-1)
    keep = y != 0
    right = (d * y) > 0

    def acc(s: slice) -> float:
        return float(right[s][keep[s]].float().mean())

    return acc(tr), acc(slice(n_train, None))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=6000, help="HH-RLHF test pairs to use (random, seeded)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from pluralign.data.corpora import load_hh_pairs
    from pluralign.models.reward_model import SummaryConditionedRM
    from pluralign.sim.hh_users import HH_TYPES, hh_persona

    pairs = list(load_hh_pairs())
    idx = np.random.default_rng(args.seed).permutation(len(pairs))[: args.pairs]
    pairs = [pairs[i] for i in idx]
    personas = {t: hh_persona(t) for t in HH_TYPES}
    diffs = np.array([[personas[t].utility(p.prompt, p.chosen) - personas[t].utility(p.prompt, p.rejected)
                       for t in HH_TYPES] for p in pairs])
    rm = SummaryConditionedRM.from_backbone("sentence-transformers/all-MiniLM-L6-v2", max_length=256)
    rm.eval()
    t0 = time.time()
    xc = embed(rm, [p.prompt for p in pairs], [p.chosen for p in pairs])
    xr = embed(rm, [p.prompt for p in pairs], [p.rejected for p in pairs])
    print(f"embedded {2 * len(pairs)} (prompt, response) items in {time.time() - t0:.1f} s")
    n_train = int(0.75 * len(pairs))
    print(f"| user type | head | train acc | held-out acc (n={len(pairs) - n_train}) |")
    print("|---|---|---:|---:|")
    for k, t in enumerate(HH_TYPES):
        y = torch.tensor(np.sign(diffs[:, k]), dtype=torch.float32)
        for hidden in (0, 256):
            tr, te = fit_and_score(xc, xr, y, n_train, hidden, seed=args.seed)
            name = "linear" if hidden == 0 else f"MLP {hidden}"
            print(f"| {t} | {name} | {100 * tr:.1f} | {100 * te:.1f} |")


if __name__ == "__main__":
    main()
