"""Input validation shared by every public entry point.

Each checker returns a *new* float64 array (inputs are never modified in place;
``check_matrix(..., copy=False)`` may return a read-only view instead, for large data)
and raises ``ValueError``/``TypeError`` whose message names the argument and what
was expected.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "check_matrix",
    "check_vector",
    "check_finite",
    "check_targets",
    "check_X_y",
    "check_beta",
    "check_depth",
    "check_choice",
    "check_positive",
    "check_options",
]


def _as_float_array(value: Any, name: str) -> np.ndarray:
    if value is None:
        raise TypeError(f"`{name}` must be an array of numbers, got None")
    if hasattr(value, "compute") and hasattr(value, "chunks"):
        raise TypeError(
            f"`{name}` is a dask array; pass it to deepdual.solve (which streams "
            "sufficient statistics) or call .compute() first"
        )
    if isinstance(value, (str, bytes)):
        raise TypeError(f"`{name}` must be an array of numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value)  # no copy yet: the one copy is made below, as float64
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"`{name}` must be an array of numbers: {exc}") from None
    if arr.dtype == object:
        raise TypeError(f"`{name}` must be a numeric array, got an object array (ragged or mixed types?)")
    if arr.dtype.kind == "c":
        raise TypeError(f"`{name}` must be real, got complex dtype {arr.dtype}")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be a numeric array, got dtype {arr.dtype}")
    # one new float64 array (a plain ndarray), whatever the input's dtype or class: the caller
    # may then work on it freely, the input is never modified
    return np.array(arr, dtype=np.float64, copy=True, subok=False)


def check_finite(arr: np.ndarray, name: str) -> None:
    # fast exact path: a NaN or an infinity makes the sum NaN or infinite (inf - inf = NaN),
    # so a finite sum proves every entry finite; a non-finite sum (which finite entries can
    # also give, by overflow) falls through to the entrywise test
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.sum(arr)
    if np.isfinite(total):
        return
    if not np.all(np.isfinite(arr)):
        bad = "NaN" if np.isnan(arr).any() else "inf"
        raise ValueError(f"`{name}` must contain only finite numbers, found {bad}")


def _read_only_view(value: Any) -> np.ndarray | None:
    """A read-only ndarray view of ``value`` when it already is a C-contiguous float64 array
    (no copy: large data sets are not duplicated), else None (the caller copies)."""
    if not isinstance(value, np.ndarray) or value.dtype != np.float64 or not value.flags.c_contiguous:
        return None
    view = value.view(np.ndarray)  # a plain ndarray sharing the data; the input's flags are unchanged
    view.flags.writeable = False
    return view


def check_matrix(X: Any, name: str = "X", *, min_rows: int = 1, copy: bool = True) -> np.ndarray:
    """Return ``X`` as a finite 2-D float64 array of shape (n, d).

    With ``copy=True`` (the default) a new array the caller may modify.  With ``copy=False``
    a C-contiguous float64 input is returned as a *read-only view* (no copy of a large data
    set; an attempt to write into it raises instead of modifying the caller's data); other
    inputs are converted (copied) as with ``copy=True``.
    """
    arr = None if copy else _read_only_view(X)
    if arr is None:
        arr = _as_float_array(X, name)
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D with shape (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"`{name}` must have at least {min_rows} row(s), got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError(f"`{name}` must have at least one column, got shape {arr.shape}")
    check_finite(arr, name)
    return arr


def check_targets(y: Any, n: int | None = None, name: str = "y") -> tuple[np.ndarray, bool]:
    """Return ``(Y, scalar)``: ``Y`` of shape (n, K) as new float64, ``scalar`` true for 1-D input."""
    arr = _as_float_array(y, name)
    if arr.ndim == 1:
        scalar = True
        arr = arr.reshape(-1, 1)
    elif arr.ndim == 2:
        scalar = False
    else:
        raise ValueError(f"`{name}` must be 1-D (n,) or 2-D (n, K), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"`{name}` must be non-empty, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"`{name}` must have {n} rows to match X, got {arr.shape[0]}")
    check_finite(arr, name)
    return arr, scalar


def check_X_y(X: Any, y: Any, *, copy: bool = True) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validate a data set. Returns ``(X (n,d), Y (n,K), scalar)``, all new float64 arrays
    (``copy=False``: ``X`` may be a read-only view of the input, see :func:`check_matrix`)."""
    Xa = check_matrix(X, "X", copy=copy)
    Ya, scalar = check_targets(y, Xa.shape[0], "y")
    return Xa, Ya, scalar


def check_beta(beta: Any, name: str = "beta") -> float:
    """``beta`` must be a finite real number > 0."""
    if isinstance(beta, bool) or not isinstance(beta, (numbers.Real, np.floating, np.integer)):
        if isinstance(beta, np.ndarray) and beta.ndim == 0:
            beta = beta.item()
        else:
            raise TypeError(f"`{name}` must be a real number > 0, got {type(beta).__name__}")
    beta = float(beta)
    if not np.isfinite(beta) or beta <= 0:
        raise ValueError(f"`{name}` must be a finite number > 0, got {beta}")
    return beta


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        op = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be a finite number {op}, got {value}")
    return value


def check_depth(depth: Any, name: str = "depth") -> int:
    if isinstance(depth, bool) or not isinstance(depth, (numbers.Integral, np.integer)):
        raise TypeError(f"`{name}` must be an integer >= 2, got {type(depth).__name__}")
    depth = int(depth)
    if depth < 2:
        raise ValueError(f"`{name}` must be an integer >= 2, got {depth}")
    return depth


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be one of {', '.join(map(repr, choices))}; got {value!r}")
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_options(options: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """Reject unknown keyword options with a message listing the known ones."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        known = ", ".join(allowed) if allowed else "none"
        raise TypeError(f"{where}: unknown option(s) {', '.join(map(repr, unknown))}; known options: {known}")


def as_rng(rng: Any) -> np.random.Generator:
    """``rng`` may be None, an int seed or a ``numpy.random.Generator``."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (numbers.Integral, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"`rng` must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def check_vector(value: Any, name: str, *, flatten: bool = False) -> np.ndarray:
    """Return ``value`` as a new finite 1-D float64 array (``flatten``: any shape, raveled)."""
    arr = _as_float_array(value, name)
    if flatten:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {arr.shape}")
    check_finite(arr, name)
    return arr
