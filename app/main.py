"""DeMix Studio dashboard entry: ``streamlit run app/main.py --server.address 127.0.0.1``.

Pages live in ``pages/`` (see ``app/nav.py``). The gate (``app/auth.py``) decides from the address the
server really listens on: loopback without passwords lets the local user edit; otherwise a password
is asked (``DEMIX_PASSWORD`` edits, ``DEMIX_VIEW_PASSWORD`` views), and a non-loopback address without
one is refused.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts app/ on the path, not the repository root
    sys.path.insert(0, str(ROOT))

from app.auth import gate  # noqa: E402 - needs the repository root on the path
from app.nav import all_pages  # noqa: E402
from app.state import keep_study_in_url  # noqa: E402

st.set_page_config(page_title="DeMix Studio", page_icon=":material/science:", layout="wide")
role = gate()
keep_study_in_url()
navigation = st.navigation(all_pages())
if role == "view":
    st.sidebar.caption(":material/visibility: View only")
navigation.run()
