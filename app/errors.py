"""The errors a page catches and shows: every error meant for people is a :class:`DemixError` (one line naming the
bad thing and the fix); :class:`WorkspaceError` is a folder that is no workspace, :class:`OutsideRootError` one
outside the allowed root."""

from __future__ import annotations

from app.state import OutsideRootError
from demix_core.errors import DemixError, WorkspaceError

__all__ = ["DemixError", "OutsideRootError", "WorkspaceError"]
