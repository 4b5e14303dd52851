"""Stops the process groups of a runner that died without stopping them (`kill -9`, a crash).

Started by `procs.Keeper` as `python -I -S keeper.py`, in its own session, with a pipe as
stdin whose only writer is the runner. The runner writes `+PGID GRACE` when it starts a
process group and `-PGID` once the group is gone. When the pipe closes, however the runner
ended, every group still listed gets SIGTERM, then SIGKILL after its grace period.

Standard library only, no imports of mizzen: it must start fast and outlive a broken install.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a reused id owned by someone else: not ours
        return False
    return True


def _signal(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop(groups: dict[int, float]) -> None:
    """SIGTERM every group, SIGKILL what is left when its grace period is over."""
    now = time.monotonic()
    deadlines = {pgid: now + grace for pgid, grace in groups.items() if _alive(pgid)}
    for pgid in deadlines:
        _signal(pgid, signal.SIGTERM)
    while deadlines:
        now = time.monotonic()
        for pgid, deadline in list(deadlines.items()):
            if not _alive(pgid):
                del deadlines[pgid]
            elif now >= deadline:
                _signal(pgid, signal.SIGKILL)
                del deadlines[pgid]
        time.sleep(0.05)


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # only the end of the pipe ends the keeper
    groups: dict[int, float] = {}
    for raw in sys.stdin.buffer:
        parts = raw.split()
        try:
            if parts and parts[0].startswith(b"+"):
                groups[int(parts[0][1:])] = float(parts[1]) if len(parts) > 1 else 10.0
            elif parts and parts[0].startswith(b"-"):
                groups.pop(int(parts[0][1:]), None)
        except ValueError:
            continue
    stop(groups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
