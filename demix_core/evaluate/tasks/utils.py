"""Result functions shared by DeMix Studio's lm-eval tasks (loaded by lm-eval through ``!function``)."""


def process_mc(doc, results):
    """Ranked classification accuracy, plus the gold continuation's log-likelihood and UTF-8 bytes
    (aggregated by lm-eval's ``bits_per_byte``: -sum(ll) / sum(bytes) / ln 2)."""
    lls = [r[0] for r in results]
    gold = int(doc["gold"])
    pred = max(range(len(lls)), key=lambda i: lls[i])
    return {
        "acc": 1.0 if pred == gold else 0.0,
        "bits_per_byte": (lls[gold], len(doc["gold_text"].encode("utf-8"))),
    }


def process_gold(doc, results):
    """Log-likelihood of the gold solution given the prompt, and its UTF-8 bytes."""
    ll, _ = results[0]
    return {"bits_per_byte": (ll, len(doc["target"].encode("utf-8")))}
