"""The house rules hold for this tree, and the checker catches each kind of breach on a made-up tree."""

from __future__ import annotations

from pathlib import Path

import layout  # tests/layout.py (the tests folder is on the path, as for conftest)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in ("demix_core", "app", "pages"):
        (tmp_path / folder).mkdir(exist_ok=True)
    return tmp_path


def test_this_tree_keeps_the_house_rules() -> None:
    found = layout.breaches()
    assert not found, "house rules broken:\n" + "\n".join(map(str, found))


def test_a_clean_made_up_tree_has_no_breach(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"demix_core/__init__.py": "", "demix_core/errors.py": "X = 1\n",
                            "demix_core/io/__init__.py": "",
                            "demix_core/io/atomic.py": "from demix_core.errors import X\n",
                            "app/state.py": "from demix_core.io.atomic import X\n",
                            "pages/a.py": "from app.state import X\n"})
    assert layout.breaches(root) == []


def test_an_in_function_cycle_is_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"demix_core/__init__.py": "", "demix_core/io/__init__.py": "",
                            "demix_core/io/a.py": "def f():\n    from demix_core.io import b\n",
                            "demix_core/io/b.py": "from demix_core.io.a import f\n"})
    found = [str(b) for b in layout.breaches(root)]
    assert found == ["demix_core.io.a: import cycle: demix_core.io.a <-> demix_core.io.b"]


def test_a_type_checking_cycle_is_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"demix_core/__init__.py": "", "demix_core/io/__init__.py": "",
                            "demix_core/io/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                                  "    from demix_core.io.b import Y\nX = 1\n",
                            "demix_core/io/b.py": "from demix_core.io.a import X\nY = 2\n"})
    assert any("import cycle" in str(b) for b in layout.breaches(root))


def test_sizes_root_count_pages_and_layers(tmp_path: Path) -> None:
    long_body = "".join(f"    x{i} = {i}\n" for i in range(layout.MAX_FUNCTION_LINES))
    files = {f"demix_core/m{i}.py": "" for i in range(layout.MAX_ROOT_MODULES)}
    files |= {"demix_core/__init__.py": "", "demix_core/io/__init__.py": "",
              "demix_core/io/big.py": "def f():\n" + long_body + "\n" * layout.MAX_MODULE_LINES,
              "demix_core/io/up.py": "from demix_core.view.figures import plot\n",
              "demix_core/view/__init__.py": "", "demix_core/view/figures.py": "def plot():\n    pass\n",
              "demix_core/oddwing/__init__.py": "",
              "pages/p.py": "import demix_core.io.big\n"}
    found = [str(b) for b in layout.breaches(_tree(tmp_path, files))]
    assert any(f"{layout.MAX_ROOT_MODULES + 1} modules at the root" in b for b in found)
    assert any(b.startswith("demix_core/io/big.py:") and "function f has" in b for b in found)
    assert any(b.startswith("demix_core/io/big.py: ") and "lines (at most" in b for b in found)
    assert any("imports up the layers: demix_core.view.figures (view)" in b for b in found)
    assert any("'oddwing' is in no layer" in b for b in found)
    assert any(b.startswith("pages/p.py:1") and "reach the core through app/" in b for b in found)
    unplaced = [b for b in found if b.startswith("demix_core/m") and "is in no layer" in b]
    assert len(unplaced) == layout.MAX_ROOT_MODULES  # each made-up root module is in no layer either
    assert len(found) == 6 + len(unplaced), found
