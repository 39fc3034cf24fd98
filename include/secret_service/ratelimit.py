"""In-memory per-IP token buckets.

NOTE: the buckets live in one process. Behind a load balancer with several
instances each instance counts on its own, so an address gets the limit once
per instance. The passphrase attempt limit does not depend on this, because it
is counted in the secret's document in MongoDB.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

# Above this many tracked addresses, buckets that have refilled completely are
# dropped, because they carry no state that a new bucket would not have.
MAX_TRACKED_ADDRESSES = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """Allow ``capacity`` requests per address in a burst, refilled at ``per_minute``."""

    def __init__(self, capacity: int, per_minute: float, clock: Callable[[], float]):
        if capacity < 1 or per_minute <= 0:
            raise ValueError(
                f"capacity must be at least 1 and per_minute above 0, "
                f"got {capacity} and {per_minute}"
            )
        self.capacity = capacity
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _refilled(self, address: str, now: float) -> _Bucket:
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_ADDRESSES:
                self._drop_full_buckets(now)
            bucket = _Bucket(tokens=float(self.capacity), updated=now)
            self._buckets[address] = bucket
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(self.capacity), bucket.tokens + elapsed * self.rate)
        bucket.updated = now
        return bucket

    def _drop_full_buckets(self, now: float) -> None:
        for address, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.capacity:
                del self._buckets[address]

    def retry_after(self, address: str) -> int:
        """Return 0 when ``address`` has a token left, else the seconds until it has."""
        with self._lock:
            bucket = self._refilled(address, self._clock())
            if bucket.tokens >= 1:
                return 0
            return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def take(self, address: str) -> int:
        """Take one token; return 0 on success, else the seconds to wait."""
        with self._lock:
            bucket = self._refilled(address, self._clock())
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0
            return max(1, math.ceil((1 - bucket.tokens) / self.rate))
