"""What the session-backed panels share."""
from __future__ import annotations

import ipywidgets as W


class SessionBox(W.VBox):
    """A VBox subscribed to a session's events; closing it unsubscribes."""

    def close(self) -> None:
        """Unsubscribe from the session and close the widgets."""
        unsub = getattr(self, "_unsubscribe", None)
        if unsub is not None:
            unsub()
            self._unsubscribe = None
        super().close()
