"""Loaders (IDX, CIFAR-10 pickle, digits), undersampling, one-hot and whitened splits."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

import deepdual
from deepdual import datasets as ds
from deepdual.structures import is_whitened


# ---------------------------------------------------------------------------- IDX (MNIST)
def write_idx(path, arr, code, *, gz=False):
    arr = np.asarray(arr)
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    payload = header + arr.astype(big).tobytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(payload)
    return path


@pytest.fixture
def mnist_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 4, 5), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5, 9, 2], dtype=np.uint8)
    return images, labels, tmp_path


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_idx_roundtrip(mnist_files, gz):
    images, labels, tmp = mnist_files
    suffix = ".gz" if gz else ""
    ip = write_idx(tmp / f"img-idx3-ubyte{suffix}", images, 0x08, gz=gz)
    lp = write_idx(tmp / f"lab-idx1-ubyte{suffix}", labels, 0x08, gz=gz)
    X, y = ds.load_mnist_idx(ip, lp)
    assert X.shape == (7, 20) and X.dtype == np.float64
    np.testing.assert_array_equal(X, images.reshape(7, -1) / 255.0)
    np.testing.assert_array_equal(y, labels)
    Xr, _ = ds.load_mnist_idx(ip, lp, scale=False)
    np.testing.assert_array_equal(Xr, images.reshape(7, -1))


@pytest.mark.parametrize("code,dtype", [(0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32), (0x0D, np.float32),
                                        (0x0E, np.float64)])
def test_read_idx_types_big_endian(tmp_path, code, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    p = write_idx(tmp_path / "a.idx", arr, code)
    out = ds.read_idx(p)
    assert out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_mnist_errors_name_the_argument(mnist_files):
    images, labels, tmp = mnist_files
    ip = write_idx(tmp / "img", images, 0x08)
    lp = write_idx(tmp / "lab", labels, 0x08)
    with pytest.raises(FileNotFoundError, match="labels_path"):
        ds.load_mnist_idx(ip, tmp / "missing")
    with pytest.raises(FileNotFoundError, match="images_path"):
        ds.load_mnist_idx(tmp / "missing", lp)
    truncated = tmp / "trunc"
    truncated.write_bytes(ip.read_bytes()[:-5])
    with pytest.raises(ValueError, match="images_path.*truncated"):
        ds.load_mnist_idx(truncated, lp)
    bad = tmp / "bad"
    bad.write_bytes(b"hello world, not idx")
    with pytest.raises(ValueError, match="labels_path.*IDX"):
        ds.load_mnist_idx(ip, bad)
    short = write_idx(tmp / "short", labels[:5], 0x08)
    with pytest.raises(ValueError, match="labels_path"):
        ds.load_mnist_idx(ip, short)
    with pytest.raises(ValueError, match="directory"):
        ds.load_mnist_idx(tmp, lp)


# ---------------------------------------------------------------------------- CIFAR-10
def cifar_batch(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)]


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_load_cifar10_batch(tmp_path, protocol):
    data, labels = cifar_batch()
    p = tmp_path / "data_batch_1"
    with open(p, "wb") as f:
        pickle.dump({b"batch_label": b"training batch 1 of 5", b"data": data, b"labels": labels}, f,
                    protocol=protocol)
    X, y = ds.load_cifar10_batch(p)
    np.testing.assert_array_equal(X, data / 255.0)
    np.testing.assert_array_equal(y, labels)


def test_load_cifar10_str_keys_and_gzip(tmp_path):
    data, labels = cifar_batch(4, 1)
    p = tmp_path / "batch.gz"
    with gzip.open(p, "wb") as f:
        pickle.dump({"data": data, "labels": labels}, f)
    X, y = ds.load_cifar10_batch(p, scale=False)
    np.testing.assert_array_equal(X, data)
    np.testing.assert_array_equal(y, labels)


class _Evil:
    def __reduce__(self):
        import os

        return (os.getcwd, ())


def test_load_cifar10_refuses_code_and_bad_files(tmp_path):
    p = tmp_path / "evil"
    with open(p, "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": [1]}, f)
    with pytest.raises(ValueError, match="refusing"):
        ds.load_cifar10_batch(p)
    q = tmp_path / "nokeys"
    with open(q, "wb") as f:
        pickle.dump({b"x": np.zeros((2, 3))}, f)
    with pytest.raises(ValueError, match="'data' and 'labels'"):
        ds.load_cifar10_batch(q)
    r = tmp_path / "garbage"
    r.write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="`path`"):
        ds.load_cifar10_batch(r)
    with pytest.raises(FileNotFoundError, match="`path`"):
        ds.load_cifar10_batch(tmp_path / "missing")
    m = tmp_path / "mismatch"
    data, labels = cifar_batch(3)
    with open(m, "wb") as f:
        pickle.dump({b"data": data, b"labels": labels[:2]}, f)
    with pytest.raises(ValueError, match="labels"):
        ds.load_cifar10_batch(m)


def test_load_named_cifar_concatenates(tmp_path):
    parts = []
    for k in range(2):
        data, labels = cifar_batch(3, k)
        with open(tmp_path / f"b{k}", "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
        parts.append(data)
    X, y = ds.load_named("cifar10", [str(tmp_path / "b0"), str(tmp_path / "b1")])
    assert X.shape == (6, 3072) and y.shape == (6,)
    np.testing.assert_array_equal(X, np.vstack(parts) / 255.0)
    with pytest.raises(ValueError, match="mnist"):
        ds.load_named("mnist", ["only-one"])
    with pytest.raises(ValueError, match="unknown data set"):
        ds.load_named("imagenet")


# ---------------------------------------------------------------------------- bundled / synthetic
def test_digits():
    X, y = ds.load_digits_data()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    assert deepdual.datasets is ds  # lazy export


def test_make_synthetic():
    X, y = ds.make_synthetic(50, 7, 5, rng=3)
    X2, y2 = ds.make_synthetic(50, 7, 5, rng=3)
    np.testing.assert_array_equal(X, X2)
    assert X.shape == (50, 7) and np.bincount(y).tolist() == [10] * 5
    # class means are separated: nearest-mean classification beats chance clearly
    means = np.array([X[y == c].mean(0) for c in range(5)])
    pred = np.argmin(((X[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(pred == y) > 0.5
    with pytest.raises(ValueError, match="`k`"):
        ds.make_synthetic(5, 3, 1)
    with pytest.raises(ValueError, match="must not exceed"):
        ds.make_synthetic(3, 3, 4)


# ---------------------------------------------------------------------------- transforms
def test_one_hot():
    Y = ds.one_hot([0, 2, 1, 2])
    np.testing.assert_array_equal(Y, [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]])
    assert ds.one_hot(np.array([1.0, 0.0]), n_classes=4).shape == (2, 4)
    with pytest.raises(ValueError, match="n_classes"):
        ds.one_hot([0, 5], n_classes=3)
    with pytest.raises(ValueError, match="integer"):
        ds.one_hot([0.5, 1.0])
    with pytest.raises(ValueError, match=">= 0"):
        ds.one_hot([-1, 0])


def test_undersample_per_class_and_rest():
    X, y = ds.make_synthetic(60, 30, 4, rng=0)
    Xs, ys, rest = ds.undersample(X, y, n_per_class=3, rng=1)
    assert Xs.shape == (12, 30) and np.bincount(ys).tolist() == [3] * 4
    assert rest.size == 48 and len(set(rest.tolist())) == 48
    # the selected rows are exactly the rows not in `rest`
    chosen = np.setdiff1d(np.arange(60), rest)
    assert sorted(map(tuple, Xs)) == sorted(map(tuple, X[chosen]))
    Xn, _, _ = ds.undersample(X, y, n=10, rng=1)
    assert Xn.shape == (10, 30)
    with pytest.raises(ValueError, match="n <= d"):
        ds.undersample(X, y, n=31, rng=0)
    assert ds.undersample(X, y, n=31, rng=0, require_n_le_d=False)[0].shape == (31, 30)
    with pytest.raises(ValueError, match="exactly one"):
        ds.undersample(X, y, rng=0)
    with pytest.raises(ValueError, match="exceeds"):
        ds.undersample(X, y, n_per_class=16, rng=0, require_n_le_d=False)


def test_prepare_whitened_uses_training_transform_on_test():
    X, y = ds.load_digits_data()
    sp = ds.prepare_whitened(X, y, n_per_class=3, n_test=100, rng=0)
    n = sp.X_train.shape[0]
    assert n == 30 and sp.Y_train.shape == (30, 10)
    np.testing.assert_allclose(sp.X_train @ sp.X_train.T, np.eye(n), atol=1e-12)
    assert is_whitened(sp.X_train)
    # test rows are the held-out rows mapped by the *training* whitening map
    assert np.intersect1d(sp.train_index, sp.test_index).size == 0 and sp.X_test.shape == (100, 64)
    np.testing.assert_allclose(sp.X_test, X[sp.test_index] @ sp.whitener.transform_, atol=1e-12)
    np.testing.assert_allclose(sp.X_train, X[sp.train_index] @ sp.whitener.transform_, atol=1e-9)
    np.testing.assert_array_equal(sp.classes[sp.y_test], y[sp.test_index])
    np.testing.assert_array_equal(sp.classes[sp.y_train], y[sp.train_index])
    np.testing.assert_array_equal(sp.Y_train.argmax(1), sp.y_train)
    # rank-deficient samples cannot be whitened: a clear error, not a silent pseudo-whitening
    Xd = np.vstack([X[:5], X[:5]])
    with pytest.raises(ValueError, match="rank"):
        ds.prepare_whitened(Xd, np.arange(10) % 2, n=10, rng=0)
