"""Who may do what: the password gate and the two roles (edit, view).

The gate decides from the address the server really listens on (``server.address``: the command-line
flag, the ``STREAMLIT_SERVER_ADDRESS`` variable or a ``config.toml``). Streamlit reads
``.streamlit/config.toml`` from the working folder only, so a server started elsewhere has an empty
address and listens on every interface: that is not local.

- Loopback address, no password set: the local user edits.
- A password set (``DEMIX_PASSWORD`` / secret ``password`` for editors, ``DEMIX_VIEW_PASSWORD`` / secret
  ``view_password`` for viewers): everyone is asked for one, and the one given decides the role.
- Any other address and no password: the app refuses to serve.

A viewer sees every page; nothing that writes a file, changes a study, or starts or stops a process is
rendered for them. Pages ask :func:`can_edit` before drawing such a control; the role lives in the
session only (never in the URL).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from typing import Literal

import streamlit as st

Role = Literal["edit", "view"]
Decision = Literal["edit", "ask", "refuse"]
ROLE_KEY = "_demix_role"  # session-state only: no widget has this key, so no browser can set it


def is_loopback(address: str | None) -> bool:
    """Whether a listening address reaches this machine only. Unset, ``0.0.0.0`` and ``::`` are not."""
    text = (address or "").strip().strip("[]")
    if text == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:  # empty (every interface) or a host name we cannot vouch for
        return False


def decide(address: str | None, edit_password: str | None, view_password: str | None) -> Decision:
    """What the gate does for a listening address and the passwords set.

    Returns:
        ``edit`` (let the local user in), ``ask`` (show the password form) or ``refuse``.
    """
    if edit_password or view_password:
        return "ask"
    return "edit" if is_loopback(address) else "refuse"


def role_for(given: str, edit_password: str | None, view_password: str | None) -> Role | None:
    """The role a typed password grants (compared in constant time), or None."""
    data = given.encode()
    if edit_password and hmac.compare_digest(data, edit_password.encode()):
        return "edit"
    if view_password and hmac.compare_digest(data, view_password.encode()):
        return "view"
    return None


def _secret(name: str) -> str | None:
    try:
        value = st.secrets[name]
    except (KeyError, FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return None
    return str(value) if value else None


def passwords() -> tuple[str | None, str | None]:
    """(edit password, view password) from the environment, else from Streamlit secrets."""
    edit = os.environ.get("DEMIX_PASSWORD") or _secret("password")
    view = os.environ.get("DEMIX_VIEW_PASSWORD") or _secret("view_password")
    return edit, view


def listening_address() -> str:
    """The address the server binds ("" means every interface)."""
    return str(st.get_option("server.address") or "")


def gate() -> Role:
    """Return this session's role; show the password form or the refusal and stop the run otherwise."""
    role = st.session_state.get(ROLE_KEY)
    if role in ("edit", "view"):
        return role  # type: ignore[no-any-return]
    edit_pw, view_pw = passwords()
    address = listening_address()
    decision = decide(address, edit_pw, view_pw)
    if decision == "edit":
        st.session_state[ROLE_KEY] = "edit"
        return "edit"
    if decision == "refuse":
        where = address or "every interface (0.0.0.0)"
        st.error(f"This server listens on {where}, beyond this machine, and no password is set. Set "
                 "DEMIX_PASSWORD (editors) and/or DEMIX_VIEW_PASSWORD (viewers), or start it with "
                 "--server.address 127.0.0.1.")
        st.stop()
    st.title("DeMix Studio")
    given = st.text_input("Password", type="password", key="password_input")
    granted = role_for(given, edit_pw, view_pw) if given else None
    if granted:
        st.session_state[ROLE_KEY] = granted
        del st.session_state["password_input"]
        st.rerun()
    if given:
        st.error("Wrong password.")
    st.stop()


def can_edit() -> bool:
    """Whether this session may write, start or stop anything (runs the gate if it has not run)."""
    return gate() == "edit"


def require_edit() -> None:
    """Stop the run unless this session edits (a second guard inside every action that writes)."""
    if not can_edit():
        st.error("View-only session: this action is for editors (sign in with DEMIX_PASSWORD).")
        st.stop()
