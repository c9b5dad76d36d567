"""`demix merge` and `demix inspect`: the success path and one-line errors for bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from demix_core.cli import main
from demix_core.tiny import save_tiny, tiny_config


def comps(family: dict[str, Path], *names: str) -> str:
    return ",".join(str(family[n]) for n in (names or ("alpha", "beta", "gamma")))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_merge_success(tmp_path: Path, tiny_family: dict[str, Path], capsys) -> None:
    code, out, _ = run(capsys, "merge", "--components", comps(tiny_family), "--weights", "0.5,0.3,0.2",
                       "--out", str(tmp_path / "m"), "--device", "cpu")
    assert code == 0
    assert "merged alpha=0.500 beta=0.300 gamma=0.200 with linear" in out
    assert (tmp_path / "m" / "model.safetensors").exists()
    assert (tmp_path / "m" / "tokenizer.json").exists()


def test_merge_named_weights_and_ties(tmp_path: Path, tiny_family: dict[str, Path], capsys) -> None:
    code, out, err = run(capsys, "merge", "--components", comps(tiny_family), "--weights",
                         "alpha=0.6,gamma=0.4", "--method", "ties", "--base", str(tiny_family["base"]),
                         "--param", "density=0.3", "--out", str(tmp_path / "m"))
    assert code == 0, err
    assert "with ties" in out


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
    exists = root / "exists"
    exists.mkdir()
    return {"wide": wide, "othertok": othertok, "pickled": pickled, "trunc": trunc, "exists": exists}


BAD = [
    ("shapes", lambda f, b: [comps(f, "alpha") + "," + str(b["wide"]), "0.5,0.5"], "hidden_size"),
    ("tokenizer", lambda f, b: [comps(f, "alpha") + "," + str(b["othertok"]), "0.5,0.5"], "tokenizer differs"),
    ("negative", lambda f, b: [comps(f), "0.5,-0.2,0.7"], "negative"),
    ("nan", lambda f, b: [comps(f), "0.5,nan,0.5"], "finite"),
    ("zero", lambda f, b: [comps(f), "0,0,0"], "sum to 0"),
    ("count", lambda f, b: [comps(f), "0.5,0.5"], "2 weights for 3 components"),
    ("pickle", lambda f, b: [comps(f, "alpha") + "," + str(b["pickled"]), "0.5,0.5"], "pickle"),
    ("truncated", lambda f, b: [comps(f, "alpha") + "," + str(b["trunc"]), "0.5,0.5"], "truncated"),
    ("missing", lambda f, b: [comps(f, "alpha") + ",/nonexistent/model", "0.5,0.5"], "does not exist"),
]


@pytest.mark.parametrize(("case", "make", "fragment"), BAD, ids=[c[0] for c in BAD])
def test_merge_bad_input(tmp_path: Path, tiny_family, broken, capsys, case, make, fragment) -> None:
    components, weights = make(tiny_family, broken)
    out = tmp_path / "out"
    code, _, err = run(capsys, "merge", "--components", components, "--weights", weights, "--out", str(out))
    assert code == 2
    assert err.startswith("error: ") and fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_unknown_method_lists_known(tmp_path: Path, tiny_family, capsys) -> None:
    code, _, err = run(capsys, "merge", "--components", comps(tiny_family), "--weights", "1,1,1",
                       "--method", "slerpy", "--out", str(tmp_path / "o"))
    assert code == 2 and "unknown merge method 'slerpy'" in err and "multislerp" in err


def test_existing_output_without_force(tmp_path: Path, tiny_family, broken, capsys) -> None:
    code, _, err = run(capsys, "merge", "--components", comps(tiny_family), "--weights", "1,1,1",
                       "--out", str(broken["exists"]))
    assert code == 2 and "already exists" in err and "--force" in err


def test_inspect(tiny_family, broken, capsys) -> None:
    code, out, _ = run(capsys, "inspect", str(tiny_family["alpha"]), str(tiny_family["beta"]))
    assert code == 0 and "compatible: all 2 checkpoints" in out
    code, out, _ = run(capsys, "inspect", str(tiny_family["alpha"]), str(broken["wide"]))
    assert code == 1 and "NOT compatible" in out and "hidden_size" in out


def test_subprocess_error_has_no_traceback(tmp_path: Path, tiny_family, broken) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "demix_core", "merge", "--components",
         comps(tiny_family, "alpha") + "," + str(broken["trunc"]), "--weights", "0.5,0.5",
         "--out", str(tmp_path / "o")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: ") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
