"""What a speed run (`benchmarks.speed`) asks, and how much: its sizes, full and quick, and
questions as people type them, made from the knowledge base's own texts."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

ASK_QUESTION = "Qu'est-ce que l'AMIAD ?"
# A paraphrase sharing few words with the examples: the n-gram model is unsure of it, so
# answering it loads the sentence encoder.
ASK_PARAPHRASE = "mes informations restent-elles sur le territoire national ?"
_GREETINGS = ("bonjour, ", "salut ", "hello, ", "hi ")


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does; `QUICK` keeps a run to seconds."""

    calls: int = 10_000  # single-question calls timed, on each side
    batch: int = 10_000  # questions in the batch
    batch_repeats: int = 3  # the fastest of these many batch runs counts
    trainings: int = 5  # trainings timed on each side, after one untimed (imports); median
    startup_runs: int = 5  # new processes timed, on each side
    paced: int = 200  # end-to-end messages at a steady rate, for reply times
    messages: int = 2_000  # end-to-end messages (and interactions) in the burst
    users: int = 100
    clinc: bool = True  # train on CLINC150 when the data set is there


FULL = Sizes()
QUICK = Sizes(calls=200, batch=200, batch_repeats=1, trainings=1, startup_runs=1, paced=10,
              messages=40, users=5, clinc=False)


# ---------------------------------------------------------------------------------------------
# Questions


def varied_questions(texts: Sequence[str], count: int, seed: int) -> list[str]:
    """`count` questions as people type them: the knowledge base's own questions and examples,
    each possibly upper-cased, given a typo, a greeting or a missing last word."""
    rng = random.Random(seed)
    return [_vary(rng.choice(texts), rng) for _ in range(count)]


def unseen_questions(texts: Sequence[str], count: int, seed: int) -> list[str]:
    """Up to `count` distinct questions made as `varied_questions` makes them, none of them
    one of `texts` (the training examples): each is new to a process that trained on them."""
    rng = random.Random(seed)
    seen = set(texts)
    questions: list[str] = []
    for _ in range(count * 20):
        question = _vary(rng.choice(texts), rng)
        if question not in seen:
            seen.add(question)
            questions.append(question)
            if len(questions) == count:
                break
    return questions


def _vary(text: str, rng: random.Random) -> str:
    change = rng.randrange(5)
    words = text.split()
    if change == 1:
        return text.upper() + " ?"
    if change == 2 and len(text) > 3:
        at = rng.randrange(len(text) - 1)  # two neighbouring letters swapped
        return text[:at] + text[at + 1] + text[at] + text[at + 2:]
    if change == 3:
        return rng.choice(_GREETINGS) + text
    if change == 4 and len(words) > 2:
        return " ".join(words[:-1])
    return text
