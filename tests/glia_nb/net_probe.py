"""A listener on 127.0.0.1 that tells whether anything connected (bounded waits): the probe
of the network red-team tests."""
from __future__ import annotations

import socket


def listener() -> tuple[socket.socket, int]:
    """A listening socket on 127.0.0.1 and its port."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(0.2)
    return srv, srv.getsockname()[1]


def accepted(srv: socket.socket) -> list:
    """The connections that reached ``srv`` (it is closed afterwards); about a second."""
    got = []
    for _ in range(5):  # bounded: did anything reach the listener?
        try:
            conn, _addr = srv.accept()
            got.append(conn)
            conn.close()
        except (TimeoutError, socket.timeout):
            pass
    srv.close()
    return got
