"""A seeded generator of worked arithmetic and word problems with step-by-step solutions.

GSM8K and MATH are test sets and must never be trained on, so the demo's "math" domain is generated:
each problem is a question, numbered steps of the form ``<expression> = <value>`` (plain integer
arithmetic, checkable by machine), and a final ``Answer: N`` line.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from demix_core.data.sources import Document

NAMES = ["Maria", "Tom", "Aisha", "Ken", "Lena", "Omar", "Sofia", "Raj", "Emma", "Diego", "Yuki", "Noah"]
ITEMS = [("notebook", "notebooks"), ("pen", "pens"), ("apple", "apples"), ("ticket", "tickets"),
         ("book", "books"), ("cookie", "cookies"), ("marble", "marbles"), ("stamp", "stamps")]


@dataclass(frozen=True)
class Step:
    """One line of a solution: ``expression = value``, with an optional explanation before it."""

    text: str
    expression: str
    value: int


@dataclass(frozen=True)
class Problem:
    """A question, its worked steps and the final answer."""

    kind: str
    question: str
    steps: tuple[Step, ...]
    answer: int

    def render(self) -> str:
        """The problem as training text."""
        lines = [f"Question: {self.question}", "Solution:"]
        for i, s in enumerate(self.steps, 1):
            lines.append(f"Step {i}: {s.text} {s.expression} = {s.value}")
        lines.append(f"Answer: {self.answer}")
        return "\n".join(lines)


def _step(text: str, expression: str) -> Step:
    """Evaluate our own integer expression (``//`` only where division is exact); show ``/``."""
    value = eval(expression, {"__builtins__": {}}, {})  # noqa: S307 - generated here, never user input
    shown = expression.replace("//", "/")
    if eval(shown, {"__builtins__": {}}, {}) != value:  # noqa: S307
        raise ValueError(f"inexact division in generated step {expression!r}")
    return Step(text, shown, int(value))


def _arithmetic(r: random.Random) -> Problem:
    a, b, c, d = r.randint(2, 99), r.randint(2, 30), r.randint(2, 12), r.randint(1, 99)
    s1 = _step("First multiply:", f"{b} * {c}")
    s2 = _step("Then add:", f"{a} + {s1.value}")
    s3 = _step("Finally subtract:", f"{s2.value} - {d}")
    return Problem("arithmetic", f"Compute {a} + {b} * {c} - {d}.", (s1, s2, s3), s3.value)


def _shopping(r: random.Random) -> Problem:
    name = r.choice(NAMES)
    (i1, p1), (i2, p2) = r.sample(ITEMS, 2)
    n1, n2, c1, c2 = r.randint(2, 9), r.randint(2, 9), r.randint(1, 15), r.randint(1, 15)
    total = n1 * c1 + n2 * c2
    bill = next(b for b in (10, 20, 50, 100, 200, 500) if b >= total)
    s1 = _step(f"The {p1} cost", f"{n1} * {c1}")
    s2 = _step(f"The {p2} cost", f"{n2} * {c2}")
    s3 = _step("Together they cost", f"{s1.value} + {s2.value}")
    s4 = _step("The change is", f"{bill} - {s3.value}")
    q = (f"{name} buys {n1} {p1} at ${c1} each and {n2} {p2} at ${c2} each. "
         f"{name} pays with a ${bill} bill. How much change does {name} get?")
    return Problem("shopping", q, (s1, s2, s3, s4), s4.value)


def _percent(r: random.Random) -> Problem:
    pct = r.choice([10, 20, 25, 30, 40, 50, 75])
    price = r.randint(2, 40) * 20
    s1 = _step(f"The discount is {pct}% of {price}:", f"{price} * {pct} // 100")
    s2 = _step("The sale price is", f"{price} - {s1.value}")
    q = f"A jacket costs ${price}. It is on sale for {pct}% off. What is the sale price in dollars?"
    return Problem("percent", q, (s1, s2), s2.value)


def _rate(r: random.Random) -> Problem:
    speed, h1, h2 = r.randint(20, 90), r.randint(2, 6), r.randint(2, 9)
    dist = speed * h1
    s1 = _step("The speed in km per hour is", f"{dist} // {h1}")
    s2 = _step(f"In {h2} hours it travels", f"{s1.value} * {h2}")
    q = f"A car travels {dist} km in {h1} hours. How far does it travel in {h2} hours at the same speed?"
    return Problem("rate", q, (s1, s2), s2.value)


def _equation(r: random.Random) -> Problem:
    a, x, b = r.randint(2, 12), r.randint(1, 30), r.randint(1, 50)
    rhs = a * x + b
    s1 = _step(f"Subtract {b} from both sides:", f"{rhs} - {b}")
    s2 = _step(f"Divide both sides by {a}:", f"{s1.value} // {a}")
    return Problem("equation", f"Solve for x: {a}x + {b} = {rhs}.", (s1, s2), s2.value)


def _fraction(r: random.Random) -> Problem:
    den = r.choice([2, 3, 4, 5, 6, 8, 10])
    num = r.randint(1, den - 1)
    whole = den * r.randint(2, 25)
    s1 = _step(f"One {den}th of {whole} is", f"{whole} // {den}")
    s2 = _step(f"So {num}/{den} of it is", f"{s1.value} * {num}")
    return Problem("fraction", f"What is {num}/{den} of {whole}?", (s1, s2), s2.value)


def _sharing(r: random.Random) -> Problem:
    a, b = r.sample(NAMES, 2)
    k, small = r.randint(2, 6), r.randint(3, 20)
    _, plural = r.choice(ITEMS)
    total = small * (k + 1)
    s1 = _step(f"Together they have {k} + 1 shares:", f"{k} + 1")
    s2 = _step(f"One share, which is what {b} has, is", f"{total} // {s1.value}")
    s3 = _step(f"{a} has", f"{s2.value} * {k}")
    q = (f"{a} has {k} times as many {plural} as {b}. Together they have {total} {plural}. "
         f"How many {plural} does {a} have?")
    return Problem("sharing", q, (s1, s2, s3), s3.value)


def _multi_step(r: random.Random) -> Problem:
    name = r.choice(NAMES)
    _, plural = r.choice(ITEMS)
    boxes, per = r.randint(2, 9), r.randint(5, 24)
    given = r.randint(1, min(10, (boxes * per - 6) // 3))  # something is always left to lose
    lost = r.randint(1, min(5, boxes * per - 3 * given - 1))
    s1 = _step(f"{name} starts with", f"{boxes} * {per}")
    s2 = _step(f"After giving {given} to each of 3 friends,", f"{s1.value} - 3 * {given}")
    s3 = _step(f"After losing {lost},", f"{s2.value} - {lost}")
    q = (f"{name} has {boxes} boxes with {per} {plural} in each. {name} gives {given} of them to each of "
         f"3 friends and then loses {lost}. How many {plural} are left?")
    return Problem("multi_step", q, (s1, s2, s3), s3.value)


GENERATORS: dict[str, Callable[[random.Random], Problem]] = {
    "arithmetic": _arithmetic, "shopping": _shopping, "percent": _percent, "rate": _rate,
    "equation": _equation, "fraction": _fraction, "sharing": _sharing, "multi_step": _multi_step,
}


def problems(n: int, *, seed: int = 0) -> Iterator[Problem]:
    """``n`` problems, kinds in rotation, deterministic for a seed."""
    r = random.Random(seed)
    kinds = list(GENERATORS)
    for i in range(n):
        yield GENERATORS[kinds[i % len(kinds)]](r)


def documents(n_bytes: int, *, seed: int = 0, per_document: int = 8) -> Iterator[Document]:
    """Generated math as documents of ``per_document`` problems, about ``n_bytes`` in total."""
    total, batch, index = 0, [], 0
    for p in problems(10**9, seed=seed):
        batch.append(p.render())
        if len(batch) == per_document:
            text = "\n\n".join(batch)
            yield Document(f"mathgen/{seed}/{index}", text)
            total += len(text)
            batch, index = [], index + 1
            if total >= n_bytes:
                return
