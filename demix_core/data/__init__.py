"""Data: real corpora fetched offline, generated math, splits, readers and the tokenizer."""
