"""Helpers shared by the reproduce experiments: output folder, progress bar, JSON,
layer statistics and the "trained never below the certified bound" check."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any, Iterable

import numpy as np

__all__ = ["output_dir", "progress_iter", "finite", "write_json", "layer_stats", "check_not_below"]


def output_dir(out: Any) -> pathlib.Path:
    """``out`` as a :class:`pathlib.Path`; ``ValueError`` unless it is an existing directory."""
    path = pathlib.Path(out)
    if not path.is_dir():
        raise ValueError(f"`out` must be an existing directory, got {str(path)!r}")
    return path


def progress_iter(items: Iterable[Any], desc: str, progress: bool) -> Iterable[Any]:
    """``items`` wrapped in a tqdm bar when ``progress`` and tqdm is importable."""
    if progress:
        try:
            from tqdm.auto import tqdm

            return tqdm(items, desc=desc, leave=False)
        except ImportError:  # pragma: no cover - tqdm comes with the torch extra
            pass
    return items


def finite(x: Any) -> Any:
    """JSON-safe: non-finite floats become None."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    if isinstance(x, np.generic):
        return finite(x.item())
    return x


def write_json(out: pathlib.Path, name: str, data: dict[str, Any]) -> None:
    """Write ``data`` (non-finite floats as null) as strict JSON to ``out / name``."""
    (out / name).write_text(json.dumps(finite(data), indent=1, allow_nan=False))


def layer_stats(W: np.ndarray, threshold: float) -> dict[str, Any]:
    """Rank (singular values above the absolute ``threshold``), Frobenius norm, operator norm,
    stable rank :math:`\\|W\\|_F^2/\\|W\\|_2^2` and the leading singular values of a layer."""
    s = np.linalg.svd(W, compute_uv=False) if W.size else np.zeros(1)
    fro = float(np.sqrt(np.sum(s**2)))
    op = float(s[0]) if s.size else 0.0
    return {
        "rank": int(np.sum(s > threshold)),
        "frobenius": fro,
        "operator": op,
        "stable_rank": float(np.sum(s**2) / op**2) if op > 0 else 0.0,
        "singular_values": [float(v) for v in s[:8]],
    }


def check_not_below(value: float, lower_bound: float, experiment: str, where: str = "") -> None:
    """``RuntimeError`` if a trained objective is below a certified lower bound (beyond a
    relative 1e-9: the rounding of two independently computed objectives)."""
    if math.isfinite(value) and value < lower_bound - 1e-9 * abs(lower_bound):
        raise RuntimeError(f"{experiment}: trained objective {value!r} is below the certified lower bound "
                           f"{lower_bound!r}{where}")
