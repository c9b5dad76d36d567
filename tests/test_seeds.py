"""Seeds where references are trained (issue 26): the same seed trains the same weights, another seed a repeat named
``-s<seed>``; the manifest records the seed; the CLI flags parse and pass through."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from demix_core.cli import main
from demix_core.io.names import seeded_name
from demix_core.train.references import default_name
from demix_core.train.trainer import read_training
from demix_core.workspace.manifest import MANIFEST, ReferenceEntry, load_workspace

TINY = ["--steps", "3", "--batch", "2", "--seq-len", "16"]
MIX = "alpha=0.5,beta=0.5"


def _weights(folder: Path) -> dict:
    [file] = sorted(folder.glob("*.safetensors"))
    return load_file(str(file))


def test_the_same_seed_trains_the_same_weights(tiny_workspace: Path, one_torch_thread,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tiny_workspace)
    for name, seed in (("a1", "1"), ("b1", "1"), ("c2", "2")):
        assert main(["workspace", "train-reference", root, "--mixture", MIX, "--name", name, "--seed", seed,
                     *TINY]) == 0
    a, b, c = (_weights(tiny_workspace / "references" / n) for n in ("a1", "b1", "c2"))
    assert a.keys() == b.keys() == c.keys()
    assert all((a[k] == b[k]).all() for k in a)  # same seed: identical weights
    assert any(not (a[k] == c[k]).all() for k in a)  # another seed: other weights
    assert read_training(tiny_workspace / "references" / "c2")["seed"] == 2
    refs = {r.name: r for r in load_workspace(tiny_workspace).references}
    assert (refs["a1"].seed, refs["b1"].seed, refs["c2"].seed) == (1, 1, 2)
    # the default name of a repeat carries its seed; seed 0 keeps the plain name, recorded without a seed
    assert main(["workspace", "train-reference", root, "--mixture", MIX, "--seed", "3"]) == 0
    assert main(["workspace", "train-reference", root, "--mixture", MIX]) == 0
    ws = load_workspace(tiny_workspace)
    plain = default_name(ws.parse_mixture(MIX))
    refs = {r.name: r for r in ws.references}
    assert refs[f"{plain}-s3"].seed == 3 and refs[plain].seed is None
    assert read_training(tiny_workspace / "references" / plain)["seed"] == 0
    assert "seed" not in yaml.safe_load((tiny_workspace / MANIFEST).read_text())["references"][-1]
    # a name taken at another seed is one error line, not a silent reuse
    capsys.readouterr()
    assert main(["workspace", "train-reference", root, "--mixture", MIX, "--name", "a1", "--seed", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists with another training seed" in err[0]


def test_the_manifest_round_trips_the_seed(tiny_workspace: Path) -> None:
    ws = load_workspace(tiny_workspace)
    before = (tiny_workspace / MANIFEST).read_text()
    ws.save()
    assert (tiny_workspace / MANIFEST).read_text() == before  # no seed field: the file stays as it was
    ws.references = [ReferenceEntry("r0", "components/alpha", {"alpha": 1.0}),
                     ReferenceEntry("r1", "components/alpha", {"alpha": 1.0}, seed=1)]
    ws.save()
    written = yaml.safe_load((tiny_workspace / MANIFEST).read_text())["references"]
    assert "seed" not in written[0] and written[1]["seed"] == 1
    assert [r.seed for r in load_workspace(tiny_workspace).references] == [None, 1]
    data = yaml.safe_load((tiny_workspace / MANIFEST).read_text())
    data["references"][1]["seed"] = "one"
    (tiny_workspace / MANIFEST).write_text(yaml.safe_dump(data))
    from demix_core.errors import WorkspaceError

    with pytest.raises(WorkspaceError, match=r"references\[1\]: seed is 'one'; it must be a whole number"):
        load_workspace(tiny_workspace)


def test_seeded_names() -> None:
    assert seeded_name("mix-1234abcd", 0) == "mix-1234abcd"
    assert seeded_name("mix-1234abcd", 2) == "mix-1234abcd-s2"


@pytest.mark.parametrize("bad", [["--seed", "-1"], ["--seed", "x"]])
def test_a_bad_seed_is_one_line(tiny_workspace: Path, bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["workspace", "train-reference", str(tiny_workspace), "--mixture", MIX, *bad])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: argument --seed")
