"""Sign-in throttling: a client that fails too often in a window waits (429 with ``Retry-After``).

The API key cannot be guessed in a lifetime, but an unthrottled form lets anyone try at the
speed of the machine and fill the log. Failures are counted per client address in memory
(one process serves; a restart forgets them, which costs an attacker nothing they did not
have). The map is bounded: past ``max_clients`` addresses the stalest is forgotten, so a
flood of addresses cannot grow the process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class LoginThrottle:
    """At most ``failures`` failed sign-ins per client in any ``window`` seconds."""

    def __init__(self, failures: int = 5, window: float = 60.0, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        if failures < 1 or window <= 0 or max_clients < 1:
            raise ValueError("login throttle: failures and max_clients must be at least 1, window positive")
        self.failures, self.window, self.max_clients, self.clock = failures, window, max_clients, clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()  # sign-ins may be answered on several threads

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._seen.get(client, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it may try now."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            if len(times) < self.failures:
                return None
            return max(1, math.ceil(times[0] + self.window - now))

    def failed(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            times.append(now)
            self._seen[client] = times
            self._seen.move_to_end(client)
            while len(self._seen) > self.max_clients:
                self._seen.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._seen.pop(client, None)

    def __len__(self) -> int:
        return len(self._seen)
