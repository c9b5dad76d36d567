"""The Workspace page makes a workspace from checkpoints: the compatibility report shows before anything is saved."""

from __future__ import annotations

from pathlib import Path

import pytest

from demix_core.workspace.manifest import load_workspace

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "workspace.py")


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(tmp_path))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(tmp_path / "mine"))
    return tmp_path


def test_check_shows_the_report_then_save_writes_the_manifest(root: Path, tiny_family: dict[str, Path]) -> None:
    comps = [tiny_family[n] for n in ("alpha", "beta", "gamma")]
    heldout = []
    for n in ("alpha", "beta", "gamma"):
        (root / f"{n}.txt").write_text(f"{n} text for the held-out slice. " * 80)
        heldout.append(root / f"{n}.txt")
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert any("does not exist" in e.value for e in at.error)
    at.text_area(key="init_components").set_value("\n".join(map(str, comps)))
    at.text_input(key="init_domains").set_value("general,code,math")
    at.text_area(key="init_heldout").set_value("\n".join(map(str, heldout)))
    at.button(key="FormSubmitter:init_form-Check compatibility").click().run()
    assert not at.exception
    assert any("compatible: all 3 checkpoints can be merged" in s.value for s in at.success)
    assert any("alpha" in c.value and "Qwen2ForCausalLM" in c.value for c in at.code)
    assert any("first 16,384 tokens of each of 3 held-out file(s)" in c.value for c in at.caption)
    assert not (root / "mine" / "demix.yaml").exists()  # checked, not saved

    save = [b for b in at.button if b.key == "_init_prepared_save"]
    assert save
    save[0].click().run()
    assert not at.exception
    ws = load_workspace(root / "mine")
    assert ws.component_names == ("alpha", "beta", "gamma") and ws.domains()["beta"] == "code"
    assert at.dataframe and list(at.dataframe[0].value["component"]) == ["alpha", "beta", "gamma"]


def test_incompatible_set_is_reported_and_cannot_be_saved(root: Path, tiny_family: dict[str, Path],
                                                          tiny_tokenizer, tmp_path_factory) -> None:  # noqa: ANN001
    from demix_core.train.tiny import save_tiny, tiny_config

    wide = save_tiny(tmp_path_factory.mktemp("wide") / "wide", seed=3, config=tiny_config(hidden=64),
                     tokenizer=tiny_tokenizer)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.text_area(key="init_components").set_value(f"{tiny_family['alpha']}\n{wide}")
    at.button(key="FormSubmitter:init_form-Check compatibility").click().run()
    assert not at.exception
    assert any("NOT compatible" in e.value for e in at.error), [e.value for e in at.error]
    assert any("config hidden_size: 64 != 32" in c.value for c in at.code)
    assert not [b for b in at.button if b.key == "_init_prepared_save"]
    assert not (root / "mine").exists()


def test_add_component_shows_the_report_before_saving(root: Path, tiny_family: dict[str, Path]) -> None:
    from demix_core.workspace.init import prepare_init

    prepare_init(root / "mine", [str(tiny_family["alpha"]), str(tiny_family["beta"])]).save()
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception and list(at.dataframe[0].value["component"]) == ["alpha", "beta"]
    at.text_input(key="add_c_name").set_value("gamma")
    at.text_input(key="add_c_path").set_value(str(tiny_family["gamma"]))
    at.text_input(key="add_c_domain").set_value("math")
    at.button(key="FormSubmitter:add_component_form-Check component").click().run()
    assert not at.exception
    assert any("compatible: all 3 checkpoints can be merged" in s.value for s in at.success)
    assert load_workspace(root / "mine").component_names == ("alpha", "beta")  # not saved yet
    [b for b in at.button if b.key == "_add_component_save"][0].click().run()
    assert not at.exception
    assert load_workspace(root / "mine").domains() == {"alpha": "alpha", "beta": "beta", "gamma": "math"}
    at.text_input(key="add_r_name").set_value("r1")
    at.text_input(key="add_r_path").set_value(str(tiny_family["base"]))
    at.text_input(key="add_r_mixture").set_value("alpha=0.5,delta=0.5")
    at.button(key="FormSubmitter:add_reference_form-Check reference").click().run()
    assert any("unknown component 'delta'" in e.value for e in at.error)
    assert not load_workspace(root / "mine").references


def test_one_allowed_root_check_for_opening_and_making(root: Path, tiny_family: dict[str, Path]) -> None:
    """A folder outside the allowed root is neither made into a workspace nor opened (and no form is offered)."""
    elsewhere = root.parent / f"{root.name}-elsewhere"
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.text_input(key="init_dir").set_value(str(elsewhere))
    at.text_area(key="init_components").set_value(str(tiny_family["alpha"]))
    at.button(key="FormSubmitter:init_form-Check compatibility").click().run()
    assert not at.exception
    assert any(f"{elsewhere} is outside the allowed root {root.resolve()}" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "_init_prepared_save"] and not elsewhere.exists()
    at.text_input(key="ws_path").set_value(str(elsewhere)).run()
    assert any(f"{elsewhere} is outside the allowed root" in e.value for e in at.error)
    assert not [t for t in at.text_area if t.key == "init_components"]  # no "make a workspace" form out there
