"""Repository-wide pytest setup (tests/conftest.py holds the fixtures).

Work around nbclient stalling for exactly its cell ``timeout`` on cells that use an
ipywidgets ``Output`` (jupyter/nbclient#312): the shell channel's single zmq poll in
``AsyncZMQSocketChannel.get_msg`` can miss the wake-up for a reply that is already queued.
Polling in 0.5 s slices returns the reply as soon as it is there. This applies to every
in-process nbclient user (nbclient, nbmake, testbook); it changes nothing else.
"""
from __future__ import annotations

import time
from queue import Empty

try:
    import jupyter_client.channels as _channels
except ImportError:  # pragma: no cover - the notebook extras are not installed
    _channels = None

if _channels is not None and not getattr(_channels.AsyncZMQSocketChannel.get_msg, "_glia_repoll", False):
    _original_get_msg = _channels.AsyncZMQSocketChannel.get_msg

    async def _get_msg_repoll(self, timeout=None, _slice=0.5):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _slice if deadline is None else max(0.0, min(_slice, deadline - time.monotonic()))
            try:
                return await _original_get_msg(self, timeout=left)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    _get_msg_repoll._glia_repoll = True
    _channels.AsyncZMQSocketChannel.get_msg = _get_msg_repoll
