"""Which process holds something (a snapshot claim, an output's lock, a temporary file), and whether
it still lives: named as ``host:pid``, checked only on the same host."""

from __future__ import annotations

import os
import socket


def this_process() -> str:
    """This process, as a holder is named: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host lives (another user's process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_alive(holder: str) -> bool | None:
    """Whether the ``host:pid`` holder lives; None when it is on another host (cannot tell here)."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return process_alive(int(pid))
