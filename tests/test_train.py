"""Training: resume equals an uninterrupted run, training.json records what matters, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from demix_core.data import mathgen
from demix_core.data.sources import Document
from demix_core.data.split import write_documents
from demix_core.data.tokenizer import train_tokenizer
from demix_core.errors import DataError, OutputExistsError
from demix_core.train.trainer import ModelSize, TrainConfig, read_training, train_base, train_component, train_reference

SIZE = ModelSize(layers=1, hidden=32, heads=2, kv_heads=1, intermediate=64, max_positions=128)


def cfg(steps: int, **kw) -> TrainConfig:
    return TrainConfig(tokens=steps * 4 * 32, seq_len=32, batch=4, lr=kw.pop("lr", 3e-3),
                       save_every=kw.pop("save_every", 5), **kw)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    prose = [Document(str(i), f"The {w} walked along the river and spoke of the weather. " * 6)
             for i, w in enumerate(["lady", "captain", "sailor", "gentleman", "doctor", "widow"] * 10)]
    math = [Document(str(i), p.render()) for i, p in enumerate(mathgen.problems(300, seed=1))]
    write_documents(prose, root / "prose.txt")
    write_documents(math, root / "math.txt")
    write_documents(math[:20], root / "math_heldout.txt")
    tok = train_tokenizer([root / "prose.txt", root / "math.txt"], root / "tok", vocab_size=300)
    base = train_base(tok, [root / "prose.txt"], root / "base", cfg=cfg(30), size=SIZE)
    return {"root": root, "prose": root / "prose.txt", "math": root / "math.txt", "tok": tok, "base": base,
            "math_heldout": root / "math_heldout.txt"}


def test_base_training_json(corpus) -> None:
    rec = read_training(corpus["base"])
    assert rec["kind"] == "base" and rec["steps"] == 30 and rec["tokens_seen"] == 30 * 4 * 32
    assert rec["loss_curve"][0][1] > rec["loss_curve"][-1][1]  # it learned something
    assert "drift" not in rec and len(rec["tokenizer_sha256"]) == 64


def test_component_learns_its_data_and_records_drift(corpus, tmp_path: Path) -> None:
    out = train_component(corpus["base"], [corpus["math"]], [corpus["prose"]], tmp_path / "c", cfg=cfg(25, lr=3e-3),
                          name="math", heldout={"math": str(corpus["math_heldout"])})
    rec = read_training(out)
    base_rec = read_training(corpus["base"])
    assert rec["kind"] == "component" and rec["dataset"] == "math" and rec["share"] == 0.5
    assert 0 < rec["drift"] < 1
    assert rec["heldout"]["math"]["loss"] < base_rec["loss_curve"][-1][1] + 5  # finite and recorded
    assert (out / "tokenizer.json").read_bytes() == (corpus["base"] / "tokenizer.json").read_bytes()


def test_resume_gives_the_same_weights(corpus, tmp_path: Path) -> None:
    full = train_component(corpus["base"], [corpus["math"]], [corpus["prose"]], tmp_path / "full", cfg=cfg(12))

    class Stop(Exception):
        pass

    def interrupt(step: int, total: int, loss: float) -> None:
        if step == 7:
            raise Stop

    with pytest.raises(Stop):
        train_component(corpus["base"], [corpus["math"]], [corpus["prose"]], tmp_path / "resumed", cfg=cfg(12),
                        on_step=interrupt)
    assert not (tmp_path / "resumed").exists()
    assert (tmp_path / "resumed.partial").exists()  # saved at step 5
    steps_seen: list[int] = []
    train_component(corpus["base"], [corpus["math"]], [corpus["prose"]], tmp_path / "resumed", cfg=cfg(12),
                    on_step=lambda step, total, loss: steps_seen.append(step))
    assert steps_seen[0] == 6  # resumed after the step-5 save
    a = load_file(str(full / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert not (tmp_path / "resumed.partial").exists()
    assert read_training(full)["loss_curve"] == read_training(tmp_path / "resumed")["loss_curve"]


def test_same_seed_same_weights(corpus, tmp_path: Path) -> None:
    a = train_component(corpus["base"], [corpus["math"]], [corpus["prose"]], tmp_path / "a", cfg=cfg(4))
    b = train_component(corpus["base"], [corpus["math"]], [corpus["prose"]], tmp_path / "b", cfg=cfg(4))
    c = train_component(corpus["base"], [corpus["math"]], [corpus["prose"]], tmp_path / "c", cfg=cfg(4, seed=1))
    sa, sb, sc = (load_file(str(p / "model.safetensors")) for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_reference_records_mixture(corpus, tmp_path: Path) -> None:
    out = train_reference(corpus["base"], {"prose": [corpus["prose"]], "math": [corpus["math"]]},
                          {"prose": 0.25, "math": 0.75}, [corpus["prose"]], tmp_path / "r", cfg=cfg(4))
    rec = read_training(out)
    assert rec["kind"] == "reference" and rec["mixture"] == {"prose": 0.25, "math": 0.75}
    assert rec["probabilities"]["general"] == pytest.approx(0.5)
    assert rec["probabilities"]["math"] == pytest.approx(0.375)
    assert rec["drift"] > 0


def test_bad_input(corpus, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DataError, match="is empty"):
        train_component(corpus["base"], [empty], [corpus["prose"]], tmp_path / "o", cfg=cfg(3))
    odd = tmp_path / "data.xml"
    odd.write_text("<a/>")
    with pytest.raises(DataError, match="unknown format .xml"):
        train_component(corpus["base"], [odd], [], tmp_path / "o", cfg=cfg(3))
    with pytest.raises(DataError, match="--allow-repeat"):
        train_component(corpus["base"], [corpus["math_heldout"]], [corpus["prose"]], tmp_path / "o",
                        cfg=cfg(400))
    other_tok = train_tokenizer([corpus["math"]], tmp_path / "othertok", vocab_size=280)
    with pytest.raises(DataError, match="differs from the base"):
        train_component(corpus["base"], [corpus["math"]], [], tmp_path / "o", cfg=cfg(3), tokenizer_dir=other_tok)
    (tmp_path / "exists").mkdir()
    with pytest.raises(OutputExistsError):
        train_component(corpus["base"], [corpus["math"]], [], tmp_path / "exists", cfg=cfg(3))
    # Every refusal above left nothing behind: no output, no partial folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.xml", "empty.txt", "exists", "othertok"]
    # The repeat guard passes with the flag.
    train_component(corpus["base"], [corpus["math_heldout"]], [corpus["prose"]], tmp_path / "o",
                    cfg=cfg(40, allow_repeat=True))


def test_cli_train_errors_are_one_line(corpus, tmp_path: Path, capsys) -> None:
    from demix_core.cli import main

    bad = tmp_path / "x.csv"
    bad.write_text("a")
    code = main(["train", "--base", str(corpus["base"]), "--data", str(bad), "--tokens", "1000",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "unknown format .csv" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
    shutil.rmtree(tmp_path / "o", ignore_errors=True)
    code = main(["train", "--base", str(corpus["base"]), "--data", str(corpus["math"]), "--general",
                 str(corpus["prose"]), "--tokens", str(4 * 32 * 3), "--seq-len", "32", "--batch", "4",
                 "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0 and "drift from base" in out
    assert json.loads((tmp_path / "o" / "training.json").read_text())["steps"] == 3
