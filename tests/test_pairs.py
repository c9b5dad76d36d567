"""The one name=value parser (mixtures, --param, --weighting) and the one worker launcher."""

from __future__ import annotations

import sys

import pytest

from demix_core.background.launch import thread_env
from demix_core.errors import ConfigError, MixtureError
from demix_core.io.names import StudyNameError
from demix_core.mixing.mixture import Mixture
from demix_core.mixing.pairs import format_pairs, parse_pairs, parse_weighting
from demix_core.search.launch import worker_command


def test_pairs_keep_order_and_values() -> None:
    assert parse_pairs(" b=2, a=0.5 ", what="x", example="a=1") == {"b": 2.0, "a": 0.5}
    assert list(parse_pairs(["density=0.5", "lambda=1"], what="x", example="a=1")) == ["density", "lambda"]


def test_the_one_formatter_writes_each_mixture_text_as_before() -> None:
    """Labels, links, command lines and name hashes keep their exact text (each was its own f-string before)."""
    import random

    rng = random.Random(0)
    for _ in range(500):
        w = {n: rng.choice([0.0, 1e-7, 0.00004, 0.5, 1.0, rng.random(), round(rng.random(), 4)]) for n in "abcd"}
        if not sum(w.values()):
            continue
        mix = Mixture.from_mapping(list(w), w)
        for digits in (2, 3, 4):
            assert mix.label(digits) == " ".join(f"{n}={v:.{digits}f}" for n, v in mix.as_dict().items()
                                                 if round(v, digits) > 0)
        assert str(mix) == ",".join(f"{n}={v:.6g}" for n, v in mix.as_dict().items())
        assert format_pairs(mix.as_dict(), digits=6) == ",".join(f"{n}={v:.6f}" for n, v in mix.as_dict().items())
        assert format_pairs(w, digits=2, sep=" ") == " ".join(f"{n}={v:.2f}" for n, v in w.items())
        assert format_pairs(w, sep=", ") == ", ".join(f"{n}={v:g}" for n, v in w.items())
        assert Mixture.parse(str(mix), list(w)).weights == pytest.approx(mix.weights, rel=1e-5, abs=1e-9)
    assert format_pairs({"a": 0.5, "b": 0.25}) == "a=0.5,b=0.25" and format_pairs({}) == ""
    assert format_pairs({"a": 0.0, "b": 1.0}, nonzero=True) == "b=1"


@pytest.mark.parametrize(("text", "fragment"), [
    ("a=1,,b=2", "empty entry at position 2"),
    ("a=1,b", "'b' is not name=value"),
    ("=1", "'=1' is not name=value"),
    ("a=1,a=2", "'a' appears twice"),
    ("a=x", "value 'x' for 'a' is not a number"),
])
def test_bad_pairs_name_the_entry_in_one_line(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_pairs(text, what="weighting", example="general=1")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_mixture_and_weighting_use_the_same_parser() -> None:
    with pytest.raises(MixtureError, match="'a' appears twice in mixture"):
        Mixture.parse("a=0.5,a=0.5", ["a", "b"])
    assert parse_weighting("average") == "average"
    assert parse_weighting("general=1,math=2") == {"general": 1.0, "math": 2.0}
    with pytest.raises(ConfigError, match="weighting entry 'median'"):
        parse_weighting("median")


def test_label_leaves_out_weights_that_print_as_zero() -> None:
    m = Mixture.from_weights(["a", "b", "c"], [0.7, 0.297, 0.003])
    assert m.label() == "a=0.70 b=0.30"
    assert m.label(3) == "a=0.700 b=0.297 c=0.003"


def test_worker_command_runs_this_interpreter_on_the_study(tmp_path) -> None:
    cmd = worker_command(tmp_path, "s1", n_trials=7, device="cpu", storage="sqlite:///x.db")
    assert cmd == [sys.executable, "-m", "demix_core", "worker", "--workspace", str(tmp_path), "--study", "s1",
                   "--n-trials", "7", "--device", "cpu", "--storage", "sqlite:///x.db"]
    assert "--storage" not in worker_command(tmp_path, "s1", n_trials=1)
    with pytest.raises(StudyNameError):
        worker_command(tmp_path, "../escape", n_trials=1)


def test_threads_are_shared_among_workers() -> None:
    assert thread_env(2, threads=3)["OMP_NUM_THREADS"] == "3"
    assert int(thread_env(10_000)["MKL_NUM_THREADS"]) == 1
