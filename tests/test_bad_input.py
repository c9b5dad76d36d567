"""Every bad input of issue 12 through the CLI: exit 2, one `error:` line, no traceback, nothing changed.

Each case builds what it needs under ``tmp_path`` and returns the argv; the test snapshots ``tmp_path``
(every file's name, size and bytes hash) and the study storage before and after the command.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from demix_core.cli import main
from demix_core.search.study import create_study
from demix_core.workspace.manifest import load_workspace

Case = Callable[[Path, dict[str, Path], Path], list[str]]


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root -> a hash of its bytes (folders: "dir"; broken links: their target)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def studies(ws: Path) -> dict[str, int]:
    db = ws / "studies.db"
    if not db.exists():
        return {}
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    return {s.study_name: len(storage.get_all_trials(s._study_id)) for s in storage.get_all_studies()}


def copy_component(family: dict[str, Path], name: str, dst: Path) -> Path:
    shutil.copytree(family[name], dst)
    return dst


def write_header(file: Path, header: object) -> None:
    """Replace a safetensors file's header (keeping it long enough for the data that follows)."""
    raw = file.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    text = json.dumps(header).encode().ljust(n, b" ")
    file.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])


def header_without_shape(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
    bad = copy_component(fam, "beta", tmp / "noshape")
    f = bad / "model.safetensors"
    raw = f.read_bytes()
    header = json.loads(raw[8: 8 + struct.unpack("<Q", raw[:8])[0]])
    first = next(k for k in header if k != "__metadata__")
    del header[first]["shape"]
    write_header(f, header)
    return ["merge", "--components", f"{fam['alpha']},{bad}", "--weights", "0.5,0.5", "--out", str(tmp / "out")]


def header_is_a_list(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
    bad = copy_component(fam, "beta", tmp / "listhdr")
    write_header(bad / "model.safetensors", [1, 2, 3])
    return ["merge", "--components", f"{fam['alpha']},{bad}", "--weights", "0.5,0.5", "--out", str(tmp / "out")]


def shapes_disagree_with_config(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
    paths = []
    for name in ("alpha", "beta"):  # both configs edited alike: the components agree with each other
        p = copy_component(fam, name, tmp / f"cfg-{name}")
        cfg = json.loads((p / "config.json").read_text())
        cfg["intermediate_size"] = cfg["intermediate_size"] * 2
        (p / "config.json").write_text(json.dumps(cfg))
        paths.append(str(p))
    return ["merge", "--components", ",".join(paths), "--weights", "0.5,0.5", "--out", str(tmp / "out")]


def out_is_a_component(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
    a = copy_component(fam, "alpha", tmp / "alpha")
    b = copy_component(fam, "beta", tmp / "beta")
    (a / "training.json").write_text('{"steps": 250}')
    return ["merge", "--components", f"{a},{b}", "--weights", "0.5,0.5", "--out", str(a), "--force"]


def out_holds_a_component(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
    a = copy_component(fam, "alpha", tmp / "models" / "alpha")
    return ["merge", "--components", f"{a},{fam['beta']}", "--weights", "0.5,0.5", "--out", str(tmp / "models"),
            "--force"]


def train_over_base(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
    base = copy_component(fam, "base", tmp / "base")
    text = ws / "alpha.txt"
    return ["train", "--base", str(base), "--data", str(text), "--general", str(text), "--tokens", "1000",
            "--out", str(base), "--force"]


def empty_weight(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
    return ["merge", "--components", f"{fam['alpha']},{fam['beta']},{fam['gamma']}", "--weights", "0.5,,0.5",
            "--out", str(tmp / "out")]


def export_existing(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
    (tmp / "trials.csv").write_text("mine\n")
    return ["study", "export", "--workspace", str(ws), "--study", "s", "--out", str(tmp / "trials.csv")]


def export_to_folder(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
    (tmp / "folder").mkdir()
    return ["study", "export", "--workspace", str(ws), "--study", "s", "--out", str(tmp / "folder")]


def read_only_folder(tmp: Path) -> Path:
    ro = tmp / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root ignores permission bits; sysfs refuses new files even to root
        ro.chmod(0o755)
        if not Path("/sys").is_dir() or os.access("/sys", os.W_OK) and _writable("/sys"):
            pytest.skip("no read-only folder available to this user")
        return Path("/sys")
    return ro


def _writable(folder: str) -> bool:
    try:
        Path(folder, ".demix-probe").touch()
    except OSError:
        return False
    Path(folder, ".demix-probe").unlink()
    return True


def export_read_only(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
    return ["study", "export", "--workspace", str(ws), "--study", "s", "--out",
            str(read_only_folder(tmp) / "demix-trials.csv")]


def run_args(*extra: str) -> Case:
    return lambda tmp, fam, ws: ["study", "run", "--workspace", str(ws), "--study", "new", *extra]


def create_args(*extra: str) -> Case:
    return lambda tmp, fam, ws: ["study", "create", "--workspace", str(ws), "--study", "new", *extra]


def manifest(edit: Callable[[str], str | bytes]) -> Case:
    def case(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
        text = (ws / "demix.yaml").read_text()
        new = edit(text)
        (ws / "demix.yaml").write_bytes(new if isinstance(new, bytes) else new.encode())
        return ["study", "status", "--workspace", str(ws), "--study", "s"]
    return case


def symlink_loop(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
    (tmp / "loop1").symlink_to(tmp / "loop2")
    (tmp / "loop2").symlink_to(tmp / "loop1")
    return ["study", "status", "--workspace", str(tmp / "loop1"), "--study", "s"]


def stored_bad_sampler(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
    """A study stored by an older version that did not check its sampler settings (seed -1)."""
    storage = f"sqlite:///{ws / 'studies.db'}"
    good = optuna.load_study(study_name="s", storage=storage)
    old = optuna.create_study(study_name="old", storage=storage, directions=["maximize"] * 3)
    for k, v in {**good.user_attrs, "seed": -1}.items():
        old.set_user_attr(k, v)
    return ["study", "status", "--workspace", str(ws), "--study", "old"]


def eval_empty_mixture(tmp: Path, fam: dict[str, Path], ws: Path) -> list[str]:
    return ["eval", "--workspace", str(ws), "--mixture="]


# (case id, argv builder, fragments the one error line must contain)
CASES: list[tuple[str, Case, tuple[str, ...]]] = [
    ("eval-empty-mixture", eval_empty_mixture, ("mixture is empty",)),
    ("run-workers-0", run_args("--workers", "0", "--n-trials", "3"), ("--workers", "1 or more")),
    ("run-workers-neg", run_args("--workers", "-1", "--n-trials", "3"), ("--workers", "1 or more")),
    ("run-trials-0", run_args("--n-trials", "0"), ("--n-trials", "1 or more")),
    ("run-trials-neg", run_args("--n-trials", "-1"), ("--n-trials", "1 or more")),
    ("run-trials-text", run_args("--n-trials", "many"), ("--n-trials", "not a whole number")),
    ("create-trials-0", create_args("--n-trials", "0"), ("--n-trials",)),
    ("create-bad-seed", create_args("--seed", "-1"), ("seed -1", "from 0")),
    ("create-bad-method", create_args("--method", "slerpy"), ("unknown merge method 'slerpy'",)),
    ("stored-bad-sampler", stored_bad_sampler, ("unusable sampler settings", "delete-study")),
    ("header-no-shape", header_without_shape, ("header entry", "shape", "corrupt")),
    ("header-list", header_is_a_list, ("header is a JSON list",)),
    ("shapes-vs-config", shapes_disagree_with_config, ("config.json", "stored as")),
    ("out-is-input", out_is_a_component, ("is the component", "not even with --force")),
    ("out-holds-input", out_holds_a_component, ("holds the component",)),
    ("train-out-is-base", train_over_base, ("is the base", "not even with --force")),
    ("train-tokens-0", lambda tmp, fam, ws: ["train", "--base", "b", "--data", "d", "--general", "g", "--tokens", "0",
                                             "--out", str(tmp / "out")], ("--tokens", "1 or more")),
    ("empty-weight", empty_weight, ("empty entry at position 2",)),
    ("export-exists", export_existing, ("already exists", "--force")),
    ("export-folder", export_to_folder, ("is a folder",)),
    ("export-read-only", export_read_only, ("cannot write", "demix-trials.csv")),
    ("manifest-name-int", manifest(lambda t: t.replace("name: alpha", "name: 123")), ("components[0]", "123")),
    ("manifest-defaults", manifest(lambda t: t + "defaults: abc\n"), ("'defaults'", "mapping")),
    ("manifest-non-utf8", manifest(lambda t: t.encode() + b"# caf\xe9\n"), ("not UTF-8",)),
    ("manifest-tokens", manifest(lambda t: t.replace("tokens: 1000\n", "tokens: many\n")), ("tokens", "'many'")),
    ("manifest-list", manifest(lambda t: "- a\n- b\n"), ("must be a mapping",)),
    ("manifest-entry-str", manifest(lambda t: t.replace("components:\n", "components:\n- just-a-name\n")),
     ("components[0]", "mapping")),
    ("workspace-symlink-loop", symlink_loop, ("cannot be resolved",)),
    ("study-name-600-postgres", lambda tmp, fam, ws: ["study", "create", "--workspace", str(ws), "--study", "n" * 600,
                                                      "--storage", "postgresql://postgres@127.0.0.1:5432/test"],
     ("study name", "64")),
    ("worker-trials-0", lambda tmp, fam, ws: ["worker", "--workspace", str(ws), "--study", "s", "--n-trials", "0"],
     ("--n-trials",)),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, tiny_family: dict[str, Path]) -> Path:
    """A tiny workspace holding study "s" (SQLite), made once and copied by each case."""
    from conftest import make_tiny_workspace

    ws = make_tiny_workspace(tmp_path_factory.mktemp("template") / "ws", tiny_family)
    create_study(load_workspace(ws), "s", sampler="random")
    return ws


@pytest.mark.parametrize(("case", "build", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line_and_changes_nothing(
    tmp_path: Path, tiny_family: dict[str, Path], template: Path, capsys: pytest.CaptureFixture[str], case: str,
    build: Case, fragments: tuple[str, ...],
) -> None:
    ws = Path(shutil.copytree(template, tmp_path / "ws"))
    argv = build(tmp_path, tiny_family, ws)
    before, stored = snapshot(tmp_path), studies(ws)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    for frag in fragments:
        assert frag in err, (frag, err)
    assert studies(ws) == stored  # no study created, no trial added
    assert snapshot(tmp_path) == before  # no file or folder created, changed or removed
