"""Your own components: `demix init` -> `demix eval` -> `demix study create` + `study run` -> `demix merge`.

Three tiny Llama checkpoints (bf16, sharded safetensors with an index, untied head: another architecture
than the demo's Qwen2) and held-out text in three formats (.txt, .jsonl.gz, .parquet); then the bad
inputs, each one `error:` line with nothing written.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
import torch
from conftest import save_family

from demix_core.cli import main
from demix_core.workspace.manifest import load_workspace

WORDS = {
    "general": "the river runs past old green hills while people walk their dogs under grey skies".split(),
    "code": "def return if else for in range print len list dict x y = + ( ) :".split(),
    "math": "1 2 3 4 5 6 7 8 9 + - * = sum of the product equals".split(),
}


def texts(domain: str, n: int, seed: int) -> list[str]:
    r = random.Random(seed)
    return [" ".join(r.choice(WORDS[domain]) for _ in range(60)) for _ in range(n)]


def write_heldout(folder: Path) -> list[Path]:
    """One held-out file per component: plain text, gzipped JSONL, parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    txt = folder / "general.txt"
    txt.write_text("\n\n".join(texts("general", 20, 1)), encoding="utf-8")
    jz = folder / "code.jsonl.gz"
    with gzip.open(jz, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts("code", 20, 2)))
    pqf = folder / "math.parquet"
    pq.write_table(pa.table({"text": texts("math", 20, 3)}), pqf)
    return [txt, jz, pqf]


@pytest.fixture(scope="module")
def llama_family(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> list[Path]:  # noqa: ANN001
    return save_family(tmp_path_factory.mktemp("llama"), "llama", tiny_tokenizer)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_eval_study_merge(tmp_path: Path, llama_family: list[Path], capsys: pytest.CaptureFixture[str],
                               one_torch_thread: None) -> None:
    heldout = write_heldout(tmp_path / "data")
    ws_dir = tmp_path / "ws"
    code, out, err = run(capsys, "init", str(ws_dir), "--components", ",".join(map(str, llama_family)),
                         "--names", "web,code,math", "--domains", "general,code,math",
                         "--heldout", ",".join(map(str, heldout)), "--heldout-tokens", "512")
    assert code == 0, err
    assert "compatible: all 3 checkpoints can be merged" in out and "LlamaForCausalLM" in out
    assert "quick suite: the first 512 tokens of each of 3 held-out file(s)" in out
    ws = load_workspace(ws_dir)
    assert ws.component_names == ("web", "code", "math") and ws.heldout_tokens == 512
    assert [d.heldout for d in ws.datasets] == [str(p) for p in heldout]  # outside the workspace: absolute
    assert ws.component_paths() == [p.resolve() for p in llama_family]  # referenced, not copied
    assert not list(ws_dir.glob("**/*.safetensors"))

    code, out, err = run(capsys, "eval", "--workspace", str(ws_dir), "--mixture", "web=0.5,code=0.3,math=0.2",
                         "--device", "cpu")
    assert code == 0, err
    assert "memory plan: 3+1 x" in out and "x 2 B" in out  # bf16: 2 bytes a parameter
    assert "held-out slice (the first tokens of each file, up to 512): web 512, code 512, math 512 tokens" in out
    domains = dict(part.split("=") for part in out.strip().splitlines()[-1].split(": ", 1)[1].split())
    assert set(domains) == {"general", "code", "math"} and all(float(v) < 0 for v in domains.values())

    code, out, err = run(capsys, "study", "create", "--workspace", str(ws_dir), "--study", "own",
                         "--sampler", "random")
    assert code == 0, err
    code, out, err = run(capsys, "study", "run", "--workspace", str(ws_dir), "--study", "own", "--n-trials", "4",
                         "--device", "cpu", "--threads", "1")
    assert code == 0, err
    assert "4 trials in" in out
    code, out, err = run(capsys, "study", "status", "--workspace", str(ws_dir), "--study", "own", "--json")
    status = json.loads(out)
    assert status["counts"]["COMPLETE"] == 4, status

    merged = tmp_path / "merged"
    code, out, err = run(capsys, "merge", "--workspace", str(ws_dir), "--weights", "web=0.5,math=0.5",
                         "--out", str(merged), "--device", "cpu")
    assert code == 0, err
    assert "merged web=0.500 math=0.500 with linear" in out
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(merged), local_files_only=True, dtype=torch.bfloat16)
    a, c = ({k: v for f in sorted(p.glob("*.safetensors")) for k, v in load_file(str(f)).items()}
            for p in (llama_family[0], llama_family[2]))
    got = model.state_dict()["model.layers.0.mlp.up_proj.weight"].float()
    want = 0.5 * a["model.layers.0.mlp.up_proj.weight"].float() + 0.5 * c["model.layers.0.mlp.up_proj.weight"].float()
    assert (got - want).abs().le(want.abs() * 2.0 ** -8 + 1e-7).all()


def test_add_component_and_reference(tmp_path: Path, llama_family: list[Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    heldout = write_heldout(tmp_path / "data")
    ws_dir = tmp_path / "ws"
    assert main(["init", str(ws_dir), "--components", ",".join(map(str, llama_family[:2])), "--names", "a,b",
                 "--heldout", ",".join(map(str, heldout[:2]))]) == 0
    capsys.readouterr()
    body = tmp_path / "data" / "c.jsonl"
    body.write_text("".join(json.dumps({"body": t}) + "\n" for t in texts("math", 5, 9)))
    code, out, err = run(capsys, "workspace", "add-component", str(ws_dir), "--name", "c", "--path",
                         str(llama_family[2]), "--domain", "math", "--heldout", str(body), "--text-field", "body")
    assert code == 0, err
    assert "compatible: all 3 checkpoints" in out
    ws = load_workspace(ws_dir)
    assert ws.component_names == ("a", "b", "c") and ws.dataset("c").text_field == "body"
    assert ws.domains() == {"a": "a", "b": "b", "c": "math"}  # a domain defaults to the component's name
    code, out, err = run(capsys, "workspace", "add-reference", str(ws_dir), "--name", "r1", "--path",
                         str(llama_family[0]), "--mixture", "a=0.5,c=0.5")
    assert code == 0, err
    assert load_workspace(ws_dir).references[0].mixture == {"a": 0.5, "b": 0.0, "c": 0.5}
    code, out, err = run(capsys, "workspace", "--workspace", str(ws_dir))
    assert "quick suite: the first 16,384 tokens of each of 3 held-out file(s)" in out


def _one_error(err: str, *fragments: str) -> None:
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for f in fragments:
        assert f in err, (f, err)


@pytest.fixture(scope="module")
def wider(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> Path:  # noqa: ANN001
    """A Llama checkpoint whose MLP is wider: it cannot be merged with the family."""
    return save_family(tmp_path_factory.mktemp("wide"), "llama", tiny_tokenizer, n=1, intermediate_size=96)[0]


def test_bad_input_one_line_and_nothing_written(tmp_path: Path, llama_family: list[Path], wider: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    heldout = write_heldout(tmp_path / "data")
    ws_dir = tmp_path / "ws"
    comps = ",".join(map(str, llama_family))
    held = ",".join(map(str, heldout))

    code, out, err = run(capsys, "init", str(ws_dir), "--components", f"{llama_family[0]},{wider}", "--names", "a,w")
    assert code == 2 and "NOT compatible" in out  # the report is printed first
    _one_error(err, "cannot be merged", "config intermediate_size: 96 != 64", "shape of model.layers.0.mlp")
    assert not ws_dir.exists()

    empty = tmp_path / "data" / "empty.txt"
    empty.write_text("  \n")
    nofield = tmp_path / "data" / "nofield.jsonl"
    nofield.write_text('{"content": "x"}\n')
    cases = [(str(tmp_path / "data" / "missing.txt"), "does not exist"), (str(empty), "is empty"),
             (str(nofield), "has no 'text' field")]
    for bad, fragment in cases:
        code, _, err = run(capsys, "init", str(ws_dir), "--components", comps, "--heldout",
                           f"{heldout[0]},{heldout[1]},{bad}")
        assert code == 2
        _one_error(err, fragment, Path(bad).name)
        assert not ws_dir.exists()
    code, _, err = run(capsys, "init", str(ws_dir), "--components", comps, "--heldout", held, "--text-field", "body")
    _one_error(err, "no 'body'")
    assert not ws_dir.exists()

    assert main(["init", str(ws_dir), "--components", comps, "--names", "a,b,c", "--heldout", held]) == 0
    manifest = (ws_dir / "demix.yaml").read_text()
    capsys.readouterr()
    code, _, err = run(capsys, "init", str(ws_dir), "--components", comps)
    assert code == 2
    _one_error(err, "already holds a workspace", "--force")
    code, _, err = run(capsys, "workspace", "add-reference", str(ws_dir), "--name", "r", "--path",
                       str(llama_family[0]), "--mixture", "a=0.5,zz=0.5")
    assert code == 2
    _one_error(err, "unknown component 'zz'", "a, b, c")
    code, out, err = run(capsys, "workspace", "add-component", str(ws_dir), "--name", "w", "--path", str(wider))
    assert code == 2 and "NOT compatible" in out
    _one_error(err, "cannot add component 'w'", "intermediate_size")
    assert (ws_dir / "demix.yaml").read_text() == manifest
    assert not list(ws_dir.glob(".demix.yaml*"))  # no partial manifest left

    code, _, err = run(capsys, "init", str(ws_dir), "--components", comps, "--names", "x,y,z", "--force")
    assert code == 0, err
    assert load_workspace(ws_dir).component_names == ("x", "y", "z")
