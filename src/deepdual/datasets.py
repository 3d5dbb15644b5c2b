r"""Data sets for the experiments: bundled digits, synthetic classes, MNIST and CIFAR-10 files.

The paper's Figure 2 uses *whitened and sampled* data: a data set is randomly
undersampled to :math:`n \le d` samples, whitened so that :math:`XX^T = I_n`
(the assumption of the whitened closed form, docs/theory.md §2.6), and the labels are one-hot
encoded.  :func:`prepare_whitened` does exactly that and applies the *training*
whitening transform to the held-out samples, so test accuracy measures the same
network on new data.

Loaders
-------
* :func:`load_digits_data` -- scikit-learn's bundled 8x8 handwritten digits
  (n = 1797, d = 64, 10 classes; needs the ``[sklearn]`` extra);
* :func:`make_synthetic` -- Gaussian classes around random means;
* :func:`load_mnist_idx` -- MNIST in its original IDX format (``.gz`` or raw);
* :func:`load_cifar10_batch` -- one CIFAR-10 "python version" batch file.

Every loader returns ``(X, y)`` with ``X`` a float64 array of shape (n, d) and ``y``
integer class labels of shape (n,).
"""

from __future__ import annotations

import gzip
import numbers
import os
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import as_rng, check_matrix

__all__ = [
    "load_digits_data",
    "make_synthetic",
    "read_idx",
    "load_mnist_idx",
    "load_cifar10_batch",
    "undersample",
    "one_hot",
    "whiten_train_test",
    "prepare_whitened",
    "WhitenedSplit",
    "load_named",
]


# ---------------------------------------------------------------------------- loaders
def load_digits_data(*, scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits: ``X`` (1797, 64), ``y`` in 0..9.

    Parameters
    ----------
    scale : bool
        Divide the pixel values (0..16) by 16.

    Returns
    -------
    X : ndarray (1797, 64), float64
    y : ndarray (1797,), int64
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - exercised only without scikit-learn
        raise ImportError("the digits data set needs scikit-learn; install it with `pip install deepdual[sklearn]`") from None
    data = load_digits()
    X = np.array(data.data, dtype=np.float64)
    if scale:
        X /= 16.0
    return X, np.array(data.target, dtype=np.int64)


def make_synthetic(n: int, d: int, k: int, rng: Any = None, *, separation: float = 2.0,
                   noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    r"""``k`` Gaussian classes in :math:`\mathbb{R}^d`: :math:`x = \mu_{y} + \text{noise}\cdot g`.

    Class means :math:`\mu_c` are i.i.d. :math:`\mathcal{N}(0, (\text{separation}^2/d) I)`
    scaled so that :math:`\|\mu_c\| \approx` ``separation``; labels are balanced
    (``n // k`` or one more per class) and shuffled.

    Parameters
    ----------
    n, d, k : int
        Samples, features (>= 1) and classes (>= 2, <= n).
    rng : None, int or numpy Generator
    separation, noise : float
        Norm of the class means and standard deviation of the within-class noise
        (per coordinate, divided by sqrt(d)).

    Returns
    -------
    X : ndarray (n, d), y : ndarray (n,) of ints in 0..k-1
    """
    for name, v, lo in (("n", n, 1), ("d", d, 1), ("k", k, 2)):
        if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)) or v < lo:
            raise ValueError(f"`{name}` must be an integer >= {lo}, got {v!r}")
    if k > n:
        raise ValueError(f"`k` ({k}) must not exceed `n` ({n})")
    rng = as_rng(rng)
    means = rng.standard_normal((k, d)) * (separation / np.sqrt(d))
    y = rng.permutation(np.arange(n) % k).astype(np.int64)
    X = means[y] + noise * rng.standard_normal((n, d)) / np.sqrt(d)
    return X, y


_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _open_maybe_gzip(path: str, name: str):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`{name}` must be a file path, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`{name}` {path!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"`{name}` {path!r} is a directory, expected a file")
    with open(path, "rb") as f:
        head = f.read(2)
    return gzip.open(path, "rb") if head == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: str | os.PathLike, *, name: str = "path") -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or raw.

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, the dimensions as
    big-endian int32, then the data in C order, big-endian.
    """
    f = _open_maybe_gzip(path, name)  # FileNotFoundError / ValueError naming the argument
    try:
        with f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"`{name}` {os.fspath(path)!r} could not be read: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"`{name}` {os.fspath(path)!r} is not an IDX file (bad magic number)")
    dt, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"`{name}` {os.fspath(path)!r} is not an IDX file (truncated header)")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    count = int(np.prod(shape))
    if len(raw) - header != count * dt.itemsize:
        raise ValueError(
            f"`{name}` {os.fspath(path)!r} is truncated or corrupt: header says shape {shape} "
            f"({count * dt.itemsize} bytes), file has {len(raw) - header} data bytes"
        )
    return np.frombuffer(raw, dtype=dt, count=count, offset=header).reshape(shape).astype(dt.newbyteorder("="))


def load_mnist_idx(images_path: str | os.PathLike, labels_path: str | os.PathLike, *,
                   scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """MNIST (or Fashion-MNIST) from its IDX files, e.g. ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    X : ndarray (n, rows * cols), float64 (divided by 255 if ``scale``)
    y : ndarray (n,), int64
    """
    images = read_idx(images_path, name="images_path")
    labels = read_idx(labels_path, name="labels_path")
    if images.ndim < 2:
        raise ValueError(f"`images_path` must hold an array of images (>= 2 dimensions), got shape {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"`labels_path` must hold a 1-D array of labels, got shape {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"`labels_path` has {labels.shape[0]} labels but `images_path` has {images.shape[0]} images")
    X = images.reshape(images.shape[0], -1).astype(np.float64)
    if scale and images.dtype == np.uint8:
        X /= 255.0
    return X, labels.astype(np.int64)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays and builtin containers (no arbitrary code)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)")


def load_cifar10_batch(path: str | os.PathLike, *, scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch of the "python version" (e.g. ``data_batch_1``).

    The file is a pickled dict with ``b'data'`` (uint8, shape (n, 3072)) and
    ``b'labels'`` (a list of n ints).  It is read with a restricted unpickler that
    rebuilds only numpy arrays and builtin containers.

    Returns
    -------
    X : ndarray (n, 3072), float64 (divided by 255 if ``scale``)
    y : ndarray (n,), int64
    """
    f = _open_maybe_gzip(path, "path")  # FileNotFoundError / ValueError naming the argument
    try:
        with f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, ImportError) as exc:
        raise ValueError(f"`path` {os.fspath(path)!r} is not a CIFAR-10 python batch: {exc}") from None
    if not isinstance(batch, dict):
        raise ValueError(f"`path` {os.fspath(path)!r} must hold a dict, got {type(batch).__name__}")
    get = lambda k: batch.get(k.encode(), batch.get(k))  # noqa: E731 - bytes keys (py2 pickles) or str keys
    data, labels = get("data"), get("labels")
    if data is None or labels is None:
        raise ValueError(f"`path` {os.fspath(path)!r} has no 'data' and 'labels' entries (keys: {list(batch)[:5]})")
    data = np.asarray(data)
    labels = np.asarray(labels)
    if data.ndim != 2 or labels.ndim != 1 or data.shape[0] != labels.shape[0]:
        raise ValueError(
            f"`path` {os.fspath(path)!r} must hold data (n, d) and labels (n,), got {data.shape} and {labels.shape}"
        )
    X = data.astype(np.float64)
    if scale and data.dtype == np.uint8:
        X /= 255.0
    return X, labels.astype(np.int64)


# ---------------------------------------------------------------------------- transforms
def one_hot(y: Any, n_classes: int | None = None) -> np.ndarray:
    """One-hot matrix (n, K) of integer labels ``0..K-1`` (K = ``n_classes`` or ``max(y) + 1``)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"`y` must be a non-empty 1-D array of class labels, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.all(y == np.round(y)):
            raise ValueError("`y` must hold integer class labels")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iub":
        raise TypeError(f"`y` must hold integer class labels, got dtype {y.dtype}")
    if y.min() < 0:
        raise ValueError("`y` must hold class labels >= 0")
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    if k <= int(y.max()):
        raise ValueError(f"`n_classes` ({k}) must exceed the largest label ({int(y.max())})")
    out = np.zeros((y.shape[0], k))
    out[np.arange(y.shape[0]), y] = 1.0
    return out


def _undersample_index(y: np.ndarray, n_rows: int, d: int, n_per_class: Any, n: Any, rng: np.random.Generator,
                       require_n_le_d: bool) -> np.ndarray:
    if (n_per_class is None) == (n is None):
        raise ValueError("pass exactly one of `n_per_class` and `n`")
    if n_per_class is not None:
        if isinstance(n_per_class, bool) or not isinstance(n_per_class, (numbers.Integral, np.integer)) or n_per_class < 1:
            raise ValueError(f"`n_per_class` must be an integer >= 1, got {n_per_class!r}")
        chosen = []
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            if idx.size < n_per_class:
                raise ValueError(f"`n_per_class` ({n_per_class}) exceeds the {idx.size} samples of class {c!r}")
            chosen.append(rng.choice(idx, size=n_per_class, replace=False))
        sel = rng.permutation(np.concatenate(chosen))
    else:
        if isinstance(n, bool) or not isinstance(n, (numbers.Integral, np.integer)) or not 1 <= n <= n_rows:
            raise ValueError(f"`n` must be an integer in [1, {n_rows}], got {n!r}")
        sel = rng.choice(n_rows, size=int(n), replace=False)
    if require_n_le_d and sel.size > d:
        raise ValueError(
            f"undersampling keeps {sel.size} samples but X has only d = {d} features; whitening "
            f"(X X^T = I) needs n <= d: lower `n_per_class`/`n` or pass require_n_le_d=False"
        )
    return sel


def undersample(X: Any, y: Any, *, n_per_class: int | None = None, n: int | None = None, rng: Any = None,
                require_n_le_d: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Random subset of ``n_per_class`` samples of every class, or ``n`` samples in all.

    The paper undersamples so that :math:`n \le d`, which whitening (:math:`XX^T = I_n`)
    needs; with ``require_n_le_d`` a larger selection is an error.

    Returns
    -------
    X_sub : ndarray (n_sub, d)
    y_sub : ndarray (n_sub,)
    rest : ndarray of int
        Indices (into ``X``) of the samples *not* selected, e.g. for testing.
    """
    X = check_matrix(X, "X")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"`y` must be 1-D with {X.shape[0]} labels to match X, got shape {y.shape}")
    sel = _undersample_index(y, X.shape[0], X.shape[1], n_per_class, n, as_rng(rng), require_n_le_d)
    mask = np.ones(X.shape[0], dtype=bool)
    mask[sel] = False
    return X[sel], y[sel], np.flatnonzero(mask)


def whiten_train_test(X_train: Any, X_test: Any | None = None):
    r"""Whiten ``X_train`` so that :math:`XX^T = I_n` and apply the *same* map to ``X_test``.

    Uses :class:`deepdual.Whitener` (fitted on the training data only).

    Returns
    -------
    Xw_train, Xw_test (or None), whitener
    """
    from .whitening import Whitener

    w = Whitener().fit(X_train)
    Xw = w.transform(X_train)
    Xt = None if X_test is None else w.transform(X_test)
    return Xw, Xt, w


@dataclass
class WhitenedSplit:
    r"""A whitened, undersampled training set (:math:`XX^T = I_n`, one-hot ``Y``) and its test set."""

    X_train: np.ndarray  # (n, d), whitened: X X^T = I_n
    Y_train: np.ndarray  # (n, K) one-hot
    y_train: np.ndarray  # (n,) labels
    X_test: np.ndarray  # (n_test, d), transformed with the training whitening map
    y_test: np.ndarray  # (n_test,) labels
    name: str = ""
    train_index: np.ndarray | None = None  # rows of the original X used for training
    test_index: np.ndarray | None = None  # rows of the original X used for testing
    classes: np.ndarray | None = None  # original label of class k (column k of Y_train)
    whitener: Any = None  # the fitted deepdual.Whitener: X_test = whitener.transform(X[test_index])

    @property
    def n_classes(self) -> int:
        return self.Y_train.shape[1]


def prepare_whitened(X: Any, y: Any, *, n_per_class: int | None = None, n: int | None = None,
                     n_test: int | None = None, rng: Any = None, name: str = "") -> WhitenedSplit:
    """Undersample (:func:`undersample`), whiten (:func:`whiten_train_test`) and one-hot encode.

    The test set is the samples not selected for training (at most ``n_test`` of them,
    chosen at random), transformed with the training whitening map.
    """
    rng = as_rng(rng)
    X = check_matrix(X, "X")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"`y` must be 1-D with {X.shape[0]} labels to match X, got shape {y.shape}")
    sel = _undersample_index(y, X.shape[0], X.shape[1], n_per_class, n, rng, True)
    mask = np.ones(X.shape[0], dtype=bool)
    mask[sel] = False
    rest = np.flatnonzero(mask)
    if n_test is not None and n_test < rest.size:
        rest = np.sort(rng.choice(rest, size=int(n_test), replace=False))
    classes, y_idx = np.unique(y[sel], return_inverse=True)
    rest = rest[np.isin(y[rest], classes)]  # test samples of classes never seen in training cannot be scored
    y_test = np.searchsorted(classes, y[rest])
    Xw, Xt, w = whiten_train_test(X[sel], X[rest])
    return WhitenedSplit(Xw, one_hot(y_idx, len(classes)), y_idx.astype(np.int64), Xt, y_test.astype(np.int64),
                         name, train_index=sel, test_index=rest, classes=classes, whitener=w)


def load_named(name: str, paths: list[str] | tuple[str, ...] = (), *, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Load a data set by name: ``"digits"``, ``"synthetic"``, ``"mnist"`` (images and labels
    IDX paths) or ``"cifar10"`` (one or more batch paths)."""
    paths = list(paths or [])
    if name == "digits":
        if paths:
            raise ValueError("the digits data set is bundled; it takes no data paths")
        return load_digits_data()
    if name == "synthetic":
        if paths:
            raise ValueError("the synthetic data set takes no data paths")
        return make_synthetic(1000, 100, 10, rng)
    if name == "mnist":
        if len(paths) != 2:
            raise ValueError("the mnist data set needs two paths: the images IDX file and the labels IDX file")
        return load_mnist_idx(paths[0], paths[1])
    if name == "cifar10":
        if not paths:
            raise ValueError("the cifar10 data set needs at least one batch file path (e.g. data_batch_1)")
        parts = [load_cifar10_batch(p) for p in paths]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    raise ValueError(f"unknown data set {name!r}; choose digits, synthetic, mnist or cifar10")
