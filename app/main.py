"""DeMix Studio dashboard entry: ``streamlit run app/main.py``. Pages live in ``pages/``.

The server binds 127.0.0.1 (``.streamlit/config.toml``). Binding any other address requires a
password, from ``DEMIX_PASSWORD`` or ``st.secrets["password"]``; without one the app refuses to serve.
"""

from __future__ import annotations

import hmac
import os
import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts app/ on the path, not the repository root
    sys.path.insert(0, str(ROOT))

st.set_page_config(page_title="DeMix Studio", page_icon="🧪", layout="wide")

LOCAL = {"127.0.0.1", "localhost", "::1", ""}


def _password() -> str | None:
    env = os.environ.get("DEMIX_PASSWORD")
    if env:
        return env
    try:
        return str(st.secrets["password"])
    except (KeyError, FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return None


def gate() -> None:
    """Refuse to serve a non-local address without a password; ask for it when set."""
    address = str(st.get_option("server.address") or "")
    password = _password()
    if address in LOCAL and not password:
        return
    if not password:
        st.error(f"The server listens on {address}, beyond this machine. Set DEMIX_PASSWORD (or a 'password' "
                 "secret) to serve it, or bind 127.0.0.1.")
        st.stop()
    if st.session_state.get("authenticated"):
        return
    given = st.text_input("Password", type="password", key="password_input")
    if given and hmac.compare_digest(given, password):
        st.session_state["authenticated"] = True
        st.rerun()
    if given:
        st.error("Wrong password.")
    st.stop()


gate()
PAGES = [
    st.Page(str(ROOT / "pages" / "workspace.py"), title="Workspace", icon="📁", url_path="workspace", default=True),
    st.Page(str(ROOT / "pages" / "study.py"), title="Study", icon="📈", url_path="study"),
    st.Page(str(ROOT / "pages" / "mixer.py"), title="Mixer", icon="🎚️", url_path="mixer"),
    st.Page(str(ROOT / "pages" / "recommend.py"), title="Recommend", icon="🎯", url_path="recommend"),
    st.Page(str(ROOT / "pages" / "validate.py"), title="Validate", icon="✅", url_path="validate"),
]
st.navigation(PAGES).run()
