"""SlideRule's per-extent ancillary rules for PhoREAL rows (``Atl08Dispatch::buildAncillaryRecord``,
as ``shared/tools/sliderule-cpp/README.md`` describes them), one extent at a time in plain Python:
a ``std::map`` count (ties to the smallest key; -0.0 and 0.0 one key, the first kept), a mean added
value after value; float values at or above float32's maximum (and NaN) skipped. For the tests only.
"""

from __future__ import annotations

FLT_MAX = 3.4028234663852886e38


def nearest(values: list, floats: bool):
    """SlideRule's "nearest neighbour": the most frequent value, the smallest among ties."""
    counts: dict = {}
    for v in values:
        if floats and not v < FLT_MAX:
            continue
        key = next((k for k in counts if k == v), v)     # a std::map key: -0.0 == 0.0, the first kept
        counts[key] = counts.get(key, 0) + 1
    best, best_count = (0.0 if floats else 0), 0
    for key in sorted(counts):
        if counts[key] > best_count:
            best, best_count = key, counts[key]
    return best


def mean(values: list, floats: bool):
    """SlideRule's "interpolation": a float mean of the values below FLT_MAX (0.0 if none), or the
    integer mean of all values truncated toward zero."""
    if floats:
        total, samples = 0.0, 0
        for v in values:
            if v < FLT_MAX:
                total += v
                samples += 1
        return total / samples if samples else 0.0
    total = sum(int(v) for v in values)
    quotient = abs(total) // len(values)
    return quotient if total >= 0 else -quotient
