"""How often one client may do something: public endpoints per minute, wrong staff passwords before a lockout.

A client is its address as the server sees it (behind a reverse proxy, all clients share the proxy's address
unless the proxy itself limits them: README, "Security"). In-process state: each worker counts on its own.
"""
from __future__ import annotations

import threading
import time
from collections import deque

WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000  # counters kept at once; the quietest are dropped first


class RateLimit:
    """At most ``per_minute`` calls per client in any 60 s (0: unlimited)."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute = per_minute
        self._clock = clock
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        if self.per_minute <= 0:
            return True
        now = self._clock()
        with self._lock:
            calls = self._calls.pop(client, None) or deque()
            while calls and calls[0] <= now - WINDOW_SECONDS:
                calls.popleft()
            allowed = len(calls) < self.per_minute
            if allowed:
                calls.append(now)
            self._calls[client] = calls  # re-inserted: dict order is least recently seen first
            while len(self._calls) > MAX_CLIENTS:
                self._calls.pop(next(iter(self._calls)))
            return allowed


class LoginThrottle:
    """After ``max_failures`` wrong passwords from a client, every try from it is refused for
    ``lockout_seconds`` (the right password too: guessing must not pay off)."""

    def __init__(self, max_failures: int = 5, lockout_seconds: float = 300.0, clock=time.monotonic):
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked_for(self, client: str) -> float:
        """Seconds until the client may try again (0: now)."""
        with self._lock:
            remaining = self._locked_until.get(client, 0.0) - self._clock()
            if remaining <= 0:
                self._locked_until.pop(client, None)
            return max(remaining, 0.0)

    def failed(self, client: str) -> int:
        """Count a wrong password; returns the client's failures so far (reset when it is locked out)."""
        with self._lock:
            count = self._failures.get(client, 0) + 1
            if count >= self.max_failures:
                self._locked_until[client] = self._clock() + self.lockout_seconds
                self._failures.pop(client, None)
            else:
                self._failures[client] = count
                while len(self._failures) > MAX_CLIENTS:
                    self._failures.pop(next(iter(self._failures)))
            return count

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
