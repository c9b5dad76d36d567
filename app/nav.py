"""The dashboard's pages, as ``st.Page`` objects any page can pass to ``st.switch_page``.

Every page has its own URL (``/workspace``, ``/study``, ``/mixer``, ``/recommend``, ``/validate``); the root
URL is a hidden page that forwards to ``/workspace`` with the link's query parameters (a default page is
served at ``/`` only, so making Workspace the default would leave ``/workspace`` without a page).
Icons are Material symbols: they render without an emoji font.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
PAGES = {  # url path: (title, icon)
    "workspace": ("Workspace", ":material/folder_open:"),
    "study": ("Study", ":material/scatter_plot:"),
    "mixer": ("Mixer", ":material/tune:"),
    "recommend": ("Recommend", ":material/recommend:"),
    "validate": ("Validate", ":material/fact_check:"),
}


def page(name: str) -> st.Page:
    """The page served at ``/<name>`` (one of :data:`PAGES`)."""
    title, icon = PAGES[name]
    return st.Page(str(ROOT / "pages" / f"{name}.py"), title=title, icon=icon, url_path=name)


def _home() -> None:
    """``/``: forward to the Workspace page, keeping ``?study=`` and the other link parameters."""
    st.switch_page(page("workspace"), query_params=st.query_params.to_dict())


def all_pages() -> list[st.Page]:
    """The pages for ``st.navigation``: the hidden root forwarder first, then the five pages."""
    home = st.Page(_home, title="DeMix Studio", icon=":material/home:", url_path="home", default=True,
                   visibility="hidden")
    return [home, *(page(name) for name in PAGES)]
