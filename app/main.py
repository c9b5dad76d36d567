"""DeMix Studio dashboard entry: ``streamlit run app/main.py``. Pages live in ``pages/``."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts app/ on the path, not the repository root
    sys.path.insert(0, str(ROOT))

st.set_page_config(page_title="DeMix Studio", page_icon="🧪", layout="wide")

PAGES = [
    st.Page(str(ROOT / "pages" / "workspace.py"), title="Workspace", icon="📁", url_path="workspace",
            default=True),
]
st.navigation(PAGES).run()
