"""A log-linear latency histogram in the manner of HdrHistogram, small enough to own.

Values are integer microseconds. Below 256 µs every value has its own bucket; above, each
power of two is split into 128 buckets, so any recorded value is reported within 1/128 (< 0.8 %)
of itself at any magnitude, in constant memory per decade and O(1) per record — which a
sorted list of samples cannot promise over a long run at thousands of TPS.
"""

from __future__ import annotations

SUB_BITS = 7
SUB_COUNT = 1 << SUB_BITS  # buckets per power of two
LINEAR_LIMIT = SUB_COUNT * 2  # values below this are exact


def bucket_index(value: int) -> int:
    if value < LINEAR_LIMIT:
        return max(value, 0)
    shift = value.bit_length() - SUB_BITS - 1
    return LINEAR_LIMIT + (shift - 1) * SUB_COUNT + ((value >> shift) - SUB_COUNT)


def bucket_range(index: int) -> tuple[int, int]:
    """The lowest and highest value that fall into bucket `index`."""
    if index < LINEAR_LIMIT:
        return index, index
    shift, offset = divmod(index - LINEAR_LIMIT, SUB_COUNT)
    shift += 1
    low = (SUB_COUNT + offset) << shift
    return low, low + (1 << shift) - 1


class Histogram:
    """Counts of microsecond values; percentiles, max, mean, merge."""

    __slots__ = ("counts", "total", "max", "sum")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.max = 0
        self.sum = 0

    def record(self, value_us: int) -> None:
        index = bucket_index(value_us)
        self.counts[index] = self.counts.get(index, 0) + 1
        self.total += 1
        self.sum += value_us
        if value_us > self.max:
            self.max = value_us

    def merge(self, other: Histogram) -> None:
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count
        self.total += other.total
        self.sum += other.sum
        self.max = max(self.max, other.max)

    def percentile(self, percent: float) -> int:
        """The value at or below which `percent` % of recorded values lie (HdrHistogram reports
        the top of the bucket, capped at the true maximum); 0 when empty."""
        if not self.total:
            return 0
        rank = max(1, -(-self.total * percent // 100))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min(bucket_range(index)[1], self.max)
        return self.max

    def mean(self) -> float:
        return self.sum / self.total if self.total else 0.0
