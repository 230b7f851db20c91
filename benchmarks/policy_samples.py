"""What the initial RLUF policy samples: how often SmolLM2's own answers finish, end in a sign-off or carry an emoji.

GRPO can only amplify what the policy already samples. This probe samples the A/B prompt set of ``bench rluf`` with
the default LLM and counts, with the simulator's own detectors, the completions that end before the token cap, end
in an affectionate sign-off (the RLUF hacking cue) or contain an emoji.

    .venv/bin/python benchmarks/policy_samples.py --prompts 40 --samples 4 --max-new-tokens 192
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=40, help="A/B prompts (balanced across use-case segments)")
    ap.add_argument("--samples", type=int, default=4, help="completions per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--system-prompt", default=None, help="system message before every prompt (the policy's persona)")
    args = ap.parse_args()

    from pluralign.data.text import emoji_count
    from pluralign.evaluation.rluf_policy import held_out_prompts
    from pluralign.models.generation import generate_texts
    from pluralign.models.llm import load_causal_lm
    from pluralign.sim.features import has_signoff
    from pluralign.training.grpo_policy import chat_prompt

    model, tok = load_causal_lm()
    _, ab = held_out_prompts(args.prompts, args.prompts, args.seed)
    t0 = time.time()
    outs = generate_texts(model, tok, [chat_prompt(p, args.system_prompt) for p in ab], n=args.samples,
                          max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    texts = [o for per in outs for o in per]
    lengths = [len(tok(o).input_ids) for o in texts]
    finished = sum(n < args.max_new_tokens - 2 for n in lengths)
    print(f"{len(texts)} completions in {time.time() - t0:.0f} s, mean {sum(lengths) / len(texts):.0f} tokens; "
          f"finished before the cap: {finished}; ending in a sign-off: {sum(map(has_signoff, texts))}; "
          f"with an emoji: {sum(emoji_count(o) > 0 for o in texts)}")


if __name__ == "__main__":
    main()
