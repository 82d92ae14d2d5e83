"""Learning-curve features of a single-task run for MTL gain prediction (seed 004, Section 4).

Seed 004 (Bingel & Søgaard, 2017) describes each task's single-task training-loss curve by its
gradients at 10, 20, 30, 50 and 70% of training and by the parameters a and c of a logarithmic
curve ``L(i) = a ln(c i + d) + b`` fitted to it; these turned out to be the best predictors of
multi-task gains. `curve_features` computes the seven values on a fraction-of-training axis so
that tasks trained for different numbers of steps are comparable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

#: fractions of training at which the loss gradient is taken, with their feature names
GRADIENT_POINTS: tuple[tuple[str, float], ...] = (
    ("grad_10", 0.10),
    ("grad_20", 0.20),
    ("grad_30", 0.30),
    ("grad_50", 0.50),
    ("grad_70", 0.70),
)
#: half-width, as a fraction of training, of the window a gradient's regression line is fitted on
GRADIENT_WINDOW = 0.05
#: fewest finite points of a window's regression line (short curves widen the window to these)
_MIN_WINDOW_POINTS = 5
#: fewest finite points `curve_features` accepts
MIN_CURVE_POINTS = 10
# c * max(x) spans this log grid when looking for a starting point of the nonlinear fit
_C_GRID = np.logspace(-3, 4, 57)
_C_FLOOR = 1e-12


@dataclass(frozen=True)
class LogCurve:
    """The curve ``L(x) = a ln(c x + 1) + b``.

    :param a: scale (negative for a decreasing loss).
    :param b: value at ``x = 0``.
    :param c: rate, positive; larger bends the curve earlier.
    """

    a: float
    b: float
    c: float

    def __call__(self, x: np.ndarray | float) -> np.ndarray | float:
        """The curve's value at ``x``.

        :param x: one point or an array of points, each above ``-1 / c``.
        """
        return self.a * np.log1p(self.c * np.asarray(x, dtype=float)) + self.b


def _model(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * np.log1p(c * x) + b


def _linear_part(x: np.ndarray, y: np.ndarray, c: float) -> tuple[float, float, float]:
    """For a fixed c the curve is linear in (a, b): their least-squares values and the SSE."""
    design = np.column_stack([np.log1p(c * x), np.ones_like(x)])
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ np.array([a, b])
    return float(a), float(b), float(residual @ residual)


def fit_log_curve(x: np.ndarray, losses: np.ndarray) -> LogCurve:
    """Fit ``L(x) = a ln(c x + 1) + b`` (c > 0) to ``losses`` by nonlinear least squares.

    Seed 004 fits ``a ln(c i + d) + b``, but ``a ln(c i + d) + b = a ln(c/d · i + 1) + a ln d + b``:
    only three of the four parameters are identifiable, and any d trades against c and b. Fixing
    d = 1 keeps the paper's two features, a and c, well defined.

    For a fixed c the curve is linear in a and b, so every c of a log grid spanning
    ``c · max(x)`` from 1e-3 to 1e4 gets its exact least-squares a and b; the best of the grid
    starts ``scipy.optimize.curve_fit`` (bounded to c > 0), whose result is kept only when its
    squared error is lower. The grid makes the fit independent of a lucky initial guess and is
    the fallback when the optimizer fails. A curve without curvature (a line) has no finite
    optimum: c then ends small and a large, with ``a · c`` the slope.

    :param x: the points, at least 3, all finite and non-negative (steps or fractions of
        training; c scales with their unit).
    :param losses: the loss at each point, finite.
    :raises ValueError: when the shapes differ, there are fewer than 3 points or a value is not
        finite or a point negative.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(losses, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"x and losses must be 1-D of the same length; got shapes {x.shape} and {y.shape}"
        )
    if x.size < 3:
        raise ValueError(f"a log curve has 3 parameters; got only {x.size} points")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and losses must be finite")
    if (x < 0).any():
        raise ValueError("x must be non-negative")
    scale = float(x.max()) or 1.0
    grid = [(_linear_part(x, y, c), c) for c in _C_GRID / scale]
    (a, b, best_sse), c = min(grid, key=lambda item: item[0][2])
    best = LogCurve(a, b, float(c))
    try:
        params, _ = curve_fit(
            _model,
            x,
            y,
            p0=(a, b, c),
            bounds=([-np.inf, -np.inf, _C_FLOOR / scale], [np.inf, np.inf, np.inf]),
            max_nfev=500,
        )
    except (RuntimeError, ValueError, np.linalg.LinAlgError):
        return best
    if not np.isfinite(params).all():
        return best
    residual = y - _model(x, *params)
    if float(residual @ residual) < best_sse:
        best = LogCurve(float(params[0]), float(params[1]), float(params[2]))
    return best


def _gradient_at(x: np.ndarray, y: np.ndarray, point: float) -> float:
    """Slope of the least-squares line through the points within `GRADIENT_WINDOW` of ``point``."""
    distance = np.abs(x - point)
    window = distance <= GRADIENT_WINDOW + 1e-12
    if window.sum() < _MIN_WINDOW_POINTS:
        window = np.zeros_like(window)
        window[np.argsort(distance, kind="stable")[:_MIN_WINDOW_POINTS]] = True
    xs, ys = x[window], y[window]
    centred = xs - xs.mean()
    return float(centred @ (ys - ys.mean()) / (centred @ centred))


def curve_features(losses: Sequence[float]) -> dict[str, float]:
    """Seed 004's seven curve features of one single-task training-loss curve.

    The axis is the fraction of training: of ``n`` logged values, value ``i`` sits at
    ``x = (i + 1) / n``, in (0, 1]. Non-finite values are dropped after placing the others, so
    a gap leaves the remaining points where they were.

    ``grad_10`` ... ``grad_70``: dL/dx at 10, 20, 30, 50 and 70% of training, the slope of a
    least-squares line through the points within ±5% of training of the point. A per-step
    loss is noisy and a finite difference of it useless; the regression line averages over a
    tenth of the run, is exact on a straight stretch, and on a curved one is off by about
    ``h² L'''/10`` for the half-width h = 0.05. A curve too short to put 5 points in the
    window uses the 5 points nearest instead. The gradients are in loss per whole training run
    (a drop of 0.1 over the run's tenth reads -1).

    ``curve_a``, ``curve_c``: a and c of `fit_log_curve` on the same axis.

    :param losses: the training loss, one value per logged step, in order.
    :raises ValueError: when fewer than 10 values are finite.
    """
    values = np.asarray(losses, dtype=float).ravel()
    x = np.arange(1, values.size + 1, dtype=float) / max(values.size, 1)
    finite = np.isfinite(values)
    if int(finite.sum()) < MIN_CURVE_POINTS:
        raise ValueError(
            f"a loss curve needs at least {MIN_CURVE_POINTS} finite values; got "
            f"{int(finite.sum())} of {values.size}"
        )
    x, values = x[finite], values[finite]
    features = {name: _gradient_at(x, values, point) for name, point in GRADIENT_POINTS}
    curve = fit_log_curve(x, values)
    features["curve_a"] = curve.a
    features["curve_c"] = curve.c
    if not all(math.isfinite(value) for value in features.values()):
        raise ValueError("the loss curve gave a non-finite feature")
    return features
