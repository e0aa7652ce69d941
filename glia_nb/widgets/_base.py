"""What the session-backed panels share."""
from __future__ import annotations

import ipywidgets as W


class SessionBox(W.VBox):
    """A VBox subscribed to a session's events (``self.session``); closing it unsubscribes.
    Its approve / reject callbacks make one session call each, from the kernel thread."""

    def _approve(self, iv_id: str, edited_text: str | None) -> None:
        """Approve as written, or deliver ``edited_text`` instead (raises to refuse)."""
        if edited_text is None:
            self.session.approve(iv_id)
        else:
            self.session.edit(iv_id, edited_text)

    def _reject(self, iv_id: str) -> None:
        self.session.reject(iv_id)

    def close(self) -> None:
        """Unsubscribe from the session and close the widgets."""
        unsub = getattr(self, "_unsubscribe", None)
        if unsub is not None:
            unsub()
            self._unsubscribe = None
        super().close()
