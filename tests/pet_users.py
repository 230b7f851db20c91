"""Small two-type user sets: half the users like dogs, half like cats (the Pets idea, tiny)."""

from __future__ import annotations

import random

from pluralign.data.schema import PreferencePair, UserRecord

PROMPTS = ["Which pet should I get?", "Tell me about a good animal companion.", "What animal fits a small flat?",
           "Suggest a pet for my family.", "What is a nice pet for a child?", "Recommend an animal to adopt."]
DOG = ["Dogs are loyal and love long walks.", "A puppy will greet you at the door every day.",
       "Dogs are playful friends who fetch balls."]
CAT = ["Cats are calm and independent.", "A kitten purrs quietly on your lap.", "Cats keep themselves clean."]
FILLER = ["Any pet needs care and time.", "Think about your budget first.", "Visit a shelter near you."]


def make_users(n: int = 12, pairs_per_user: int = 6, seed: int = 0) -> list[UserRecord]:
    """Every user sees the same contested pairs (as in Pets); only the label depends on the user's type, so a
    reward model cannot memorise pairs and must read the user's summary."""
    rng = random.Random(seed)
    shared = [(rng.choice(PROMPTS), f"{rng.choice(DOG)} {rng.choice(FILLER)}", f"{rng.choice(CAT)} {rng.choice(FILLER)}")
              for _ in range(pairs_per_user)]
    users = []
    for u in range(n):
        likes_dogs = u % 2 == 0
        pairs = []
        for k, (prompt, dog, cat) in enumerate(shared):
            chosen, rejected = (dog, cat) if likes_dogs else (cat, dog)
            pairs.append(PreferencePair(pair_id=f"u{u}-p{k}", prompt=prompt, chosen=chosen, rejected=rejected,
                                        topic=f"t{k}"))
        users.append(UserRecord(user_id=f"user{u:02d}", pairs=pairs, persona="dogs" if likes_dogs else "cats"))
    return users
