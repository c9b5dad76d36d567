"""Result functions shared by DeMix Studio's lm-eval tasks (loaded by lm-eval through ``!function``).

Accuracy follows lm-eval's multiple-choice rules (``np.argmax``: the first maximum wins); bits-per-byte
items are ``(log-likelihood, UTF-8 bytes)`` pairs that lm-eval's ``bits_per_byte`` aggregation turns into
``-sum(ll) / sum(bytes) / ln 2`` over the documents.
"""

import numpy as np


def process_mc(doc, results):
    """acc, acc_norm (log-likelihood per character of each choice) and the gold continuation's bits."""
    lls = np.array([r[0] for r in results])
    gold = int(doc["gold"])
    chars = np.array([float(len(c)) for c in doc["choices"]])
    return {
        "acc": 1.0 if int(np.argmax(lls)) == gold else 0.0,
        "acc_norm": 1.0 if int(np.argmax(lls / chars)) == gold else 0.0,
        "bits_per_byte": (float(lls[gold]), len(doc["gold_text"].encode("utf-8"))),
    }


def process_partial(doc, results):
    """Partial scoring (one context per option, a shared continuation): acc and the gold option's bits."""
    lls = np.array([r[0] for r in results])
    gold = int(doc["gold"])
    return {
        "acc": 1.0 if int(np.argmax(lls)) == gold else 0.0,
        "bits_per_byte": (float(lls[gold]), len(doc["gold_text"].encode("utf-8"))),
    }


def process_gold(doc, results):
    """Log-likelihood of the gold solution given the prompt, and its UTF-8 bytes."""
    ll, _ = results[0]
    return {"bits_per_byte": (ll, len(doc["target"].encode("utf-8")))}
