"""How a learning curve cut short extrapolates: a power law fitted to its later half.

The targets benchmarks (`glimpse_targets.py`, `reproduction.py`) print it beside the figure a
run reached. A projection is not a measurement: the README reports the figure reached and
gives the projection as such.

>>> curve = [(2**k, 0.4 / 2**k) for k in range(6)]  # error halves as time doubles
>>> slope, minutes = power_law_projection(curve, 0.4 / 2**8)
>>> round(slope, 3), round(minutes, 3)
(-1.0, 256.0)
"""

import math


def power_law_projection(points, target):
    """Fit log(error) = a + b log(minutes) over the later half of `points`, (minutes, error)
    pairs in training order; return (b, the minutes at which the fit reaches `target`), with
    None for the minutes when the fit does not fall and (None, None) when there is too little
    curve to fit (fewer than 3 points in the later half, or no spread in time)."""
    points = [(m, e) for m, e in points if m > 0 and e > 0]
    points = points[len(points) // 2 :]
    if len(points) < 3:
        return None, None
    xs = [math.log(m) for m, _ in points]
    ys = [math.log(e) for _, e in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None, None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread
    if slope >= 0:
        return slope, None
    intercept = mean_y - slope * mean_x
    return slope, math.exp((math.log(target) - intercept) / slope)
