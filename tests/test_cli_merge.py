"""`demix merge` and `demix inspect`: the success path and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from demix_core.cli import main
from demix_core.merge import method_names
from demix_core.train.tiny import save_tiny, tiny_config


def comps(family: dict[str, Path], *names: str) -> str:
    return ",".join(str(family[n]) for n in (names or ("alpha", "beta", "gamma")))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_merge_success(tmp_path: Path, tiny_family: dict[str, Path], capsys) -> None:
    code, out, err = run(capsys, "merge", "--components", comps(tiny_family), "--weights", "0.5,0.3,0.2",
                         "--out", str(tmp_path / "m"), "--device", "cpu")
    assert code == 0, err
    assert "merged alpha=0.500 beta=0.300 gamma=0.200 with linear" in out
    for f in ("config.json", "model.safetensors", "tokenizer.json", "demix_recipe.json", "mergekit.yaml"):
        assert (tmp_path / "m" / f).exists(), f


def test_merge_named_weights_ties_params_seed(tmp_path: Path, tiny_family: dict[str, Path], capsys) -> None:
    code, out, err = run(capsys, "merge", "--components", comps(tiny_family), "--weights",
                         "alpha=0.6,gamma=0.4", "--method", "dare_ties", "--base", str(tiny_family["base"]),
                         "--param", "density=0.3", "--param", "lambda=0.9", "--seed", "5",
                         "--out", str(tmp_path / "m"))
    assert code == 0, err
    assert "merged alpha=0.600 gamma=0.400 with dare_ties" in out
    rec = json.loads((tmp_path / "m" / "demix_recipe.json").read_text())
    assert rec["parameters"]["density"] == 0.3 and rec["parameters"]["lambda"] == 0.9 and rec["seed"] == 5
    assert rec["mixture"] == {"alpha": 0.6, "beta": 0.0, "gamma": 0.4}


def test_merge_force_replaces(tmp_path: Path, tiny_family: dict[str, Path], capsys) -> None:
    out = tmp_path / "m"
    out.mkdir()
    (out / "old.txt").write_text("x")
    code, _, err = run(capsys, "merge", "--components", comps(tiny_family), "--weights", "1,1,1",
                       "--out", str(out), "--force")
    assert code == 0, err
    assert not (out / "old.txt").exists() and (out / "model.safetensors").exists()


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory, tiny_family: dict[str, Path], tiny_tokenizer) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("broken")
    wide = save_tiny(root / "wide", seed=9, config=tiny_config(hidden=64), tokenizer=tiny_tokenizer)
    othertok = root / "othertok"
    shutil.copytree(tiny_family["beta"], othertok)
    (othertok / "tokenizer.json").write_text((othertok / "tokenizer.json").read_text().replace("quick", "quack"))
    pickled = root / "pickled"
    pickled.mkdir()
    shutil.copy(tiny_family["alpha"] / "config.json", pickled)
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04")
    trunc = root / "trunc"
    shutil.copytree(tiny_family["gamma"], trunc)
    (trunc / "model.safetensors").write_bytes((trunc / "model.safetensors").read_bytes()[:5000])
    return {"wide": wide, "othertok": othertok, "pickled": pickled, "trunc": trunc}


Args = Callable[[dict[str, Path], dict[str, Path]], list[str]]

# (case, argv after "merge" without --out, fragments the one-line error must contain)
BAD: list[tuple[str, Args, tuple[str, ...]]] = [
    ("shapes", lambda f, b: ["--components", comps(f, "alpha") + "," + str(b["wide"]), "--weights", "0.5,0.5"],
     ("hidden_size", "64", "32")),
    ("tokenizer", lambda f, b: ["--components", comps(f, "alpha") + "," + str(b["othertok"]),
                                "--weights", "0.5,0.5"], ("tokenizer differs", "othertok")),
    ("negative", lambda f, b: ["--components", comps(f), "--weights", "0.5,-0.2,0.7"], ("beta", "negative")),
    ("nan", lambda f, b: ["--components", comps(f), "--weights", "0.5,nan,0.5"], ("beta", "finite")),
    ("zero", lambda f, b: ["--components", comps(f), "--weights", "0,0,0"], ("sum to 0",)),
    ("count", lambda f, b: ["--components", comps(f), "--weights", "0.5,0.5"], ("2 weights for 3 components",)),
    ("unknown-name", lambda f, b: ["--components", comps(f), "--weights", "alpha=0.5,delta=0.5"],
     ("unknown component 'delta'",)),
    ("method", lambda f, b: ["--components", comps(f), "--weights", "1,1,1", "--method", "slerpy"],
     ("unknown merge method 'slerpy'", *method_names())),
    ("param", lambda f, b: ["--components", comps(f), "--weights", "1,1,1", "--method", "ties",
                            "--base", str(f["base"]), "--param", "densty=0.5"], ("no parameter 'densty'", "density")),
    ("param-range", lambda f, b: ["--components", comps(f), "--weights", "1,1,1", "--method", "ties",
                                  "--base", str(f["base"]), "--param", "density=2"], ("density=2.0",)),
    ("no-base", lambda f, b: ["--components", comps(f), "--weights", "1,1,1", "--method", "task_arithmetic"],
     ("needs --base",)),
    ("pickle", lambda f, b: ["--components", comps(f, "alpha") + "," + str(b["pickled"]), "--weights", "0.5,0.5"],
     ("pickle", "safetensors")),
    ("truncated", lambda f, b: ["--components", comps(f, "alpha") + "," + str(b["trunc"]), "--weights", "0.5,0.5"],
     ("truncated", "trunc")),
    ("missing", lambda f, b: ["--components", comps(f, "alpha") + ",/nonexistent/model", "--weights", "0.5,0.5"],
     ("/nonexistent/model", "does not exist")),
]


def assert_one_line_error(code: int, err: str, fragments: tuple[str, ...]) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for frag in fragments:
        assert frag in err, (frag, err)


@pytest.mark.parametrize(("case", "make", "fragments"), BAD, ids=[c[0] for c in BAD])
def test_merge_bad_input(tmp_path: Path, tiny_family, broken, capsys, case: str, make: Args,
                         fragments: tuple[str, ...]) -> None:
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "merge", *make(tiny_family, broken), "--out", str(out))
    assert_one_line_error(code, err, fragments)
    assert stdout == ""
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_existing_output_without_force_is_refused_and_untouched(tmp_path: Path, tiny_family, capsys) -> None:
    out = tmp_path / "exists"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    code, _, err = run(capsys, "merge", "--components", comps(tiny_family), "--weights", "1,1,1",
                       "--out", str(out))
    assert_one_line_error(code, err, ("already exists", "--force", str(out)))
    assert [p.name for p in out.iterdir()] == ["mine.txt"] and (out / "mine.txt").read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir()] == ["exists"]


def test_inspect(tiny_family, broken, capsys) -> None:
    code, out, _ = run(capsys, "inspect", str(tiny_family["alpha"]), str(tiny_family["beta"]))
    assert code == 0 and "compatible: all 2 checkpoints" in out
    assert "Qwen2ForCausalLM" in out and str(tiny_family["beta"]) in out
    code, out, _ = run(capsys, "inspect", str(tiny_family["alpha"]), str(broken["wide"]), str(broken["othertok"]))
    assert code == 1 and "NOT compatible" in out
    assert "hidden_size" in out and "tokenizer differs" in out
    code, _, err = run(capsys, "inspect", str(broken["pickled"]))
    assert_one_line_error(code, err, ("pickle",))


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "demix_core", *argv], capture_output=True, text=True,
                          env=env, timeout=180)


def test_subprocess_success_and_error(tmp_path: Path, tiny_family, broken) -> None:
    ok = _cli("merge", "--components", comps(tiny_family), "--weights", "0.2,0.3,0.5", "--method", "ties",
              "--base", str(tiny_family["base"]), "--param", "density=0.5", "--out", str(tmp_path / "ok"))
    assert ok.returncode == 0, ok.stderr
    assert "with ties" in ok.stdout and "Traceback" not in ok.stderr
    assert (tmp_path / "ok" / "model.safetensors").exists()

    bad = _cli("merge", "--components", comps(tiny_family, "alpha") + "," + str(broken["trunc"]),
               "--weights", "0.5,0.5", "--out", str(tmp_path / "o"))
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "truncated" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
