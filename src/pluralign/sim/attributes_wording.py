"""The words of the ``attributes`` suite (:mod:`pluralign.sim.attributes`): prompts, and for every interest and
style level two disjoint pools of paraphrases (``A`` for context pairs, ``B`` for scored pairs), so that no word a
user's context shows for a preference reappears in what is scored."""

from __future__ import annotations

PROMPTS: tuple[str, ...] = (
    "What should I do this weekend?",
    "Can you suggest a new hobby for me?",
    "I have a free evening. Any ideas?",
    "What could I learn over the next month?",
    "Suggest a fun activity for my birthday.",
    "What is a good way to unwind after work?",
    "I want to meet new people. What should I try?",
    "Give me an idea for a day off.",
    "Recommend something to do with a friend.",
    "How can I make my mornings more interesting?",
    "What is a good project for the summer?",
    "Suggest a challenge for the new year.",
    "What could I try this autumn?",
    "I feel stuck in a routine. What would shake things up?",
    "What is worth doing on a long holiday?",
    "Any idea for a small adventure this month?",
)


LEADS = ("My suggestion is {x}.", "Try {x}.", "A good pick would be {x}.", "Consider {x}.")


#: interest -> pool -> activities (the paraphrase family of "a pastime about this interest")
INTERESTS: dict[str, dict[str, tuple[str, ...]]] = {
    "nature": {
        "A": ("hiking a forest trail", "camping beside a quiet lake", "kayaking down a slow river",
              "planting wildflowers in a meadow"),
        "B": ("birdwatching at dawn with binoculars", "tending a vegetable garden", "foraging mushrooms with a guide",
              "stargazing far from city lights"),
    },
    "cooking": {
        "A": ("baking sourdough bread", "making fresh pasta from scratch", "cooking a Thai curry recipe",
              "hosting a dumpling night"),
        "B": ("learning French pastries", "fermenting homemade kimchi", "grilling spiced kebabs",
              "taking a knife skills class"),
    },
    "music": {
        "A": ("learning chords on the guitar", "joining a community choir", "going to a jazz club",
              "practising piano each morning"),
        "B": ("drumming in a garage band", "attending an orchestra concert", "writing songs with a ukulele",
              "taking violin lessons"),
    },
    "technology": {
        "A": ("building a small robot kit", "coding a simple website", "setting up a home server",
              "3D printing a phone stand"),
        "B": ("programming a Raspberry Pi weather station", "assembling your own gaming PC",
              "prototyping a mobile app", "experimenting with an Arduino"),
    },
    "sports": {
        "A": ("playing five-a-side football", "training for a 10k run", "playing tennis at the local club",
              "swimming laps at the pool"),
        "B": ("trying beginner rock climbing", "cycling a long countryside loop", "shooting hoops at the park",
              "taking boxing classes"),
    },
    "arts": {
        "A": ("painting watercolour landscapes", "visiting a modern art gallery", "trying a pottery workshop",
              "sketching portraits in a cafe"),
        "B": ("attending a photography exhibition", "practising calligraphy", "sculpting small figures",
              "printing linocut posters"),
    },
}


#: dimension -> level -> pool -> sentences. The first level of each dimension is the "+" direction.
STYLES: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "formality": {
        "formal": {
            "A": ("I would be pleased to offer a recommendation.", "Allow me to propose a suitable option.",
                  "Kindly consider the following suggestion.", "Permit me to outline an appropriate choice."),
            "B": ("It is my pleasure to advise you accordingly.", "One may regard this as a sensible course.",
                  "Herewith is a considered proposal.", "Should it suit you, this merits attention."),
        },
        "casual": {
            "A": ("Oh, this one's easy.", "Honestly, just do it.", "Okay so here's a thought.",
                  "Yeah, totally go for this."),
            "B": ("Right, quick idea for ya.", "Hmm, how about this?", "Alright, hear me out.",
                  "Well, lemme think, got it."),
        },
    },
    "tone": {
        "upbeat": {
            "A": ("You are going to have a wonderful time.", "This could turn into a real joy.",
                  "I bet it will brighten your whole week.", "What a brilliant chance to feel great."),
            "B": ("It should leave you smiling for days.", "Such a delightful way to spend some hours.",
                  "Expect plenty of happy moments along the way.", "Chances are it will thrill and uplift you."),
        },
        "sober": {
            "A": ("It is a reasonable way to spend the time.", "Results vary from person to person.",
                  "It is one option among several.", "The experience is generally fine."),
            "B": ("Some people like it and others do not.", "Outcomes differ depending on circumstances.",
                  "Whether it helps is hard to predict.", "Expectations should stay modest."),
        },
    },
    "directness": {
        "direct": {
            "A": ("Do exactly this.", "That is my single recommendation.", "No need to look further.",
                  "Pick this and start today."),
            "B": ("Final answer, full stop.", "Go straight for it.", "Decision made: commit now.",
                  "Simply begin right away."),
        },
        "exploratory": {
            "A": ("There are many possibilities worth weighing first.", "It depends on what you enjoy, so compare.",
                  "You might also explore alternatives before deciding.", "Perhaps list several ideas beforehand."),
            "B": ("Consider your mood and energy too.", "Maybe sample two or three other routes over time.",
                  "Keep an open mind; different paths could suit better.", "Reflect on your priorities; nothing is fixed."),
        },
    },
}


#: pool -> sentences a "detailed" answer adds (two of them); concise answers have none.
LENGTH_EXTRAS: dict[str, tuple[str, ...]] = {
    "A": ("Set aside a couple of hours so nothing feels rushed.", "Bring a notebook to jot down what you enjoyed.",
          "Invite a friend along if you want company.", "Start small and build up gradually over a few weeks."),
    "B": ("Check opening times and book ahead.", "Afterwards, note which part you would repeat.",
          "Pack water, snacks and a charged phone.", "Save a little money for materials or tickets."),
}


EMOJIS: dict[str, tuple[str, ...]] = {"A": ("\U0001f60a", "\U0001f389", "\u2728"),
                                      "B": ("\U0001f44d", "\U0001f31f", "\U0001f604")}


PERSONA_CLAUSES = {
    "concise": "wants short answers", "detailed": "wants detailed answers with practical extras",
    "emoji-lover": "likes emojis", "emoji-hater": "dislikes emojis",
    "formal": "prefers formal, polite language", "casual": "prefers casual, chatty language",
    "upbeat": "likes an upbeat, encouraging tone", "sober": "prefers a sober, neutral tone",
    "direct": "wants one clear recommendation", "exploratory": "likes answers that weigh several options",
}
