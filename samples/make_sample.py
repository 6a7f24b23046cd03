"""Write samples/chat_sample.jsonl: 2,000 ultrachat-style conversations a model can learn from.

ultrachat_200k cannot be downloaded here, so `make run` uses this instead. Each conversation
asks about a country's capital, continent or currency in one of several phrasings, sometimes
with a follow-up turn or a system prompt. Held-out phrasings of facts seen in training are what
the local model must answer. Deterministic: `python samples/make_sample.py` rewrites the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

COUNTRIES = [
    ("France", "Paris", "Europe", "the euro"),
    ("Germany", "Berlin", "Europe", "the euro"),
    ("Italy", "Rome", "Europe", "the euro"),
    ("Spain", "Madrid", "Europe", "the euro"),
    ("Portugal", "Lisbon", "Europe", "the euro"),
    ("Netherlands", "Amsterdam", "Europe", "the euro"),
    ("Poland", "Warsaw", "Europe", "the zloty"),
    ("Sweden", "Stockholm", "Europe", "the Swedish krona"),
    ("Norway", "Oslo", "Europe", "the Norwegian krone"),
    ("Denmark", "Copenhagen", "Europe", "the Danish krone"),
    ("Switzerland", "Bern", "Europe", "the Swiss franc"),
    ("Austria", "Vienna", "Europe", "the euro"),
    ("Greece", "Athens", "Europe", "the euro"),
    ("Hungary", "Budapest", "Europe", "the forint"),
    ("Czechia", "Prague", "Europe", "the Czech koruna"),
    ("Ireland", "Dublin", "Europe", "the euro"),
    ("Finland", "Helsinki", "Europe", "the euro"),
    ("Romania", "Bucharest", "Europe", "the leu"),
    ("Japan", "Tokyo", "Asia", "the yen"),
    ("China", "Beijing", "Asia", "the renminbi"),
    ("India", "New Delhi", "Asia", "the rupee"),
    ("Thailand", "Bangkok", "Asia", "the baht"),
    ("Vietnam", "Hanoi", "Asia", "the dong"),
    ("Indonesia", "Jakarta", "Asia", "the rupiah"),
    ("Philippines", "Manila", "Asia", "the peso"),
    ("Mongolia", "Ulaanbaatar", "Asia", "the tugrik"),
    ("Nepal", "Kathmandu", "Asia", "the Nepalese rupee"),
    ("Malaysia", "Kuala Lumpur", "Asia", "the ringgit"),
    ("Egypt", "Cairo", "Africa", "the Egyptian pound"),
    ("Kenya", "Nairobi", "Africa", "the Kenyan shilling"),
    ("Nigeria", "Abuja", "Africa", "the naira"),
    ("Ghana", "Accra", "Africa", "the cedi"),
    ("Morocco", "Rabat", "Africa", "the dirham"),
    ("Ethiopia", "Addis Ababa", "Africa", "the birr"),
    ("Senegal", "Dakar", "Africa", "the CFA franc"),
    ("Tanzania", "Dodoma", "Africa", "the Tanzanian shilling"),
    ("Brazil", "Brasilia", "South America", "the real"),
    ("Argentina", "Buenos Aires", "South America", "the Argentine peso"),
    ("Chile", "Santiago", "South America", "the Chilean peso"),
    ("Peru", "Lima", "South America", "the sol"),
    ("Colombia", "Bogota", "South America", "the Colombian peso"),
    ("Uruguay", "Montevideo", "South America", "the Uruguayan peso"),
    ("Canada", "Ottawa", "North America", "the Canadian dollar"),
    ("Mexico", "Mexico City", "North America", "the Mexican peso"),
    ("Cuba", "Havana", "North America", "the Cuban peso"),
    ("Jamaica", "Kingston", "North America", "the Jamaican dollar"),
    ("Australia", "Canberra", "Oceania", "the Australian dollar"),
    ("Fiji", "Suva", "Oceania", "the Fijian dollar"),
    ("Iceland", "Reykjavik", "Europe", "the Icelandic krona"),
    ("Turkey", "Ankara", "Asia", "the lira"),
]

QUESTIONS = {
    "capital": [
        "What is the capital of {c}?",
        "Which city is the capital of {c}?",
        "Tell me the capital city of {c}.",
        "What's {c}'s capital?",
        "Name the capital of {c}, please.",
        "I forgot: where is the government of {c} seated?",
    ],
    "continent": [
        "On which continent is {c}?",
        "Where in the world is {c}?",
        "Which continent does {c} belong to?",
        "Is {c} in Europe, Asia or somewhere else?",
        "What continent is {c} on?",
    ],
    "currency": [
        "What currency does {c} use?",
        "Which money do people pay with in {c}?",
        "What is the currency of {c}?",
        "If I travel to {c}, what currency do I need?",
        "Name the official currency of {c}.",
    ],
}
ANSWERS = {
    "capital": "The capital of {c} is {capital}.",
    "continent": "{c} is in {continent}.",
    "currency": "{c} uses {currency}.",
}
FOLLOW_UPS = {"capital": "continent", "continent": "currency", "currency": "capital"}
SYSTEM = "You are a concise geography assistant."


def conversation(rng: random.Random) -> dict:
    c, capital, continent, currency = rng.choice(COUNTRIES)
    facts = {"c": c, "capital": capital, "continent": continent, "currency": currency}
    topic = rng.choice(list(QUESTIONS))
    messages = [{"role": "system", "content": SYSTEM}] if rng.random() < 0.15 else []
    question = rng.choice(QUESTIONS[topic]).format(**facts)
    messages += [
        {"role": "user", "content": question},
        {"role": "assistant", "content": ANSWERS[topic].format(**facts)},
    ]
    if rng.random() < 0.3:
        follow = FOLLOW_UPS[topic]
        messages += [
            {"role": "user", "content": rng.choice(QUESTIONS[follow]).format(**facts)},
            {"role": "assistant", "content": ANSWERS[follow].format(**facts)},
        ]
    key = json.dumps(messages, sort_keys=True).encode()
    return {"prompt": question, "prompt_id": hashlib.sha256(key).hexdigest(), "messages": messages}


def rows(count: int = 2000, seed: int = 2024) -> list[dict]:
    """Distinct conversations only: a sample should not teach the duplicate warning."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out = []
    while len(out) < count:
        row = conversation(rng)
        if row["prompt_id"] not in seen:
            seen.add(row["prompt_id"])
            out.append(row)
    return out


def main() -> None:
    path = Path(__file__).with_name("chat_sample.jsonl")
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows()), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
