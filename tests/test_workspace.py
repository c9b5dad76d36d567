"""The workspace manifest: round trip, validation, storage URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from demix_core.errors import WorkspaceError
from demix_core.workspace.manifest import ComponentEntry, Workspace, load_workspace, resolve_storage


def make_ws(root: Path, family: dict[str, Path]) -> Workspace:
    comps = [ComponentEntry(name=n, path=str(family[n]), domain=d, tokens=100)
             for n, d in (("alpha", "general"), ("beta", "code"), ("gamma", "math"))]
    ws = Workspace(root=root, name="t", components=comps, base=str(family["base"]))
    ws.save()
    return ws


def test_round_trip(tmp_path: Path, tiny_family: dict[str, Path]) -> None:
    make_ws(tmp_path, tiny_family)
    ws = load_workspace(tmp_path)
    assert ws.component_names == ("alpha", "beta", "gamma")
    assert ws.domains()["beta"] == "code"
    assert ws.base_path() == tiny_family["base"]
    assert ws.parse_mixture("alpha=1,gamma=1").weights == pytest.approx((0.5, 0, 0.5))
    assert ws.storage_url() == "sqlite:///" + str((tmp_path / "studies.db").resolve())


def test_not_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not a DeMix workspace"):
        load_workspace(tmp_path)
    with pytest.raises(WorkspaceError, match="does not exist"):
        load_workspace(tmp_path / "missing")


def test_missing_component_folder(tmp_path: Path, tiny_family: dict[str, Path]) -> None:
    ws = make_ws(tmp_path, tiny_family)
    ws.components[1].path = "gone"
    ws.save()
    with pytest.raises(WorkspaceError, match="component 'beta'"):
        load_workspace(tmp_path)


def test_bad_yaml(tmp_path: Path) -> None:
    (tmp_path / "demix.yaml").write_text("components: [\n")
    with pytest.raises(WorkspaceError, match="not valid YAML"):
        load_workspace(tmp_path)


def test_storage_urls_resolve(tmp_path: Path) -> None:
    assert resolve_storage("journal:j.log", tmp_path) == "journal:" + str((tmp_path / "j.log").resolve())
    assert resolve_storage("postgresql://127.0.0.1/test", tmp_path) == "postgresql://127.0.0.1/test"
    assert resolve_storage("sqlite:////abs.db", tmp_path) == "sqlite:////abs.db"
