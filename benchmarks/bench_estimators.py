"""Held-out accuracy / R^2 of the deepdual estimators against scikit-learn's MLPs, tuned
over the same alpha grid, with fit times side by side (docs/performance.md, "Estimators vs scikit-learn's MLPs").

Data (scikit-learn's bundled sets, no download), features standardized on each training
fold (the scaler is part of the fitted pipeline):

* ``diabetes`` (442 x 10, regression; targets standardized on the training fold too,
  for both estimators): ``DualNetRegressor`` vs ``MLPRegressor``, score R^2;
* ``breast_cancer`` (569 x 30, two classes, logistic loss), ``wine`` (178 x 13, three
  classes, cross-entropy) and ``digits`` (1797 x 64, ten classes, cross-entropy):
  ``DualNetClassifier`` vs ``MLPClassifier``, score accuracy.

Protocol: for every alpha of the grid (``ALPHAS``; ``--quick``: ``QUICK_ALPHAS``), both
estimators are scored by ``K``-fold cross-validation (stratified for classification,
shuffled, ``random_state=0``; the same folds for both).  "Tuned over the grid" is the
best mean score over the grid, reported with the standard deviation over folds and the
standard error ``std / sqrt(K)``, the cross-validation noise the target is measured
against.  Fit times are the mean wall time of one ``fit`` at the best alpha and the total
over the grid (the cost of the tuning), both measured in this run on this machine.

Estimators: ``DualNetRegressor/DualNetClassifier(alpha=a, random_state=0)`` (defaults
otherwise: 50 sampled patterns, ``tol=1e-4``, the estimator's 300-iteration budget for
upper-bound programs) and ``MLPRegressor/MLPClassifier(alpha=a, max_iter=2000,
random_state=0)`` (default hidden layer of 100 ReLU units, Adam, early stopping on the
training loss's tolerance).

Usage::

    python benchmarks/bench_estimators.py                 # 5 folds, full grid
    python benchmarks/bench_estimators.py --quick         # 3 folds, 3 alphas, digits subsampled
    python benchmarks/bench_estimators.py --only wine diabetes --json out.json
    python benchmarks/bench_estimators.py --only wine --gridsearch   # + GridSearchCV timing
    python benchmarks/bench_estimators.py --only diabetes breast_cancer --gridsearch --eager --no-cv

``--gridsearch`` also times scikit-learn's ``GridSearchCV`` over the same alpha grid for both
estimators (a ``StandardScaler`` pipeline; regression targets standardized by
``TransformedTargetRegressor``; the same ``K`` folds, ``n_jobs=1``, refit on all samples
included), the way a user tunes them: total wall time, best alpha and best CV score, and
the time of then reading the refitted model's ``certificate_`` (with the default
``certify="lazy"`` the branch-and-bound bound is computed on that first access).
``--gridsearch --eager`` runs the same search with ``certify=True`` (the oracle in every fit)
first, in the same process: the same-run A/B of the lazy default; the per-alpha CV scores of
the two must be identical (the oracle does not change the network).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings

import numpy as np

ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
QUICK_ALPHAS = (1e-3, 1e-2, 1e-1)
DATASETS = ("diabetes", "breast_cancer", "wine", "digits")


def load(name: str, quick: bool):
    from sklearn import datasets

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    if quick and name == "digits":
        rng = np.random.default_rng(0)
        keep = np.sort(rng.choice(len(y), 600, replace=False))
        X, y = X[keep], y[keep]
    return X.astype(float), y


def estimators(name: str, alpha: float, **deepdual_params):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from deepdual import DualNetClassifier, DualNetRegressor

    if name == "diabetes":
        return DualNetRegressor(alpha=alpha, random_state=0, **deepdual_params), \
            MLPRegressor(alpha=alpha, max_iter=2000, random_state=0)
    return DualNetClassifier(alpha=alpha, random_state=0, **deepdual_params), \
        MLPClassifier(alpha=alpha, max_iter=2000, random_state=0)


def cross_validate(name: str, X: np.ndarray, y: np.ndarray, alpha: float, folds: int) -> dict:
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    regression = name == "diabetes"
    cv = (KFold if regression else StratifiedKFold)(folds, shuffle=True, random_state=0)
    proto = estimators(name, alpha)
    out = {}
    for label, est0 in zip(("deepdual", "mlp"), proto):
        scores, times, zeros = [], [], 0
        for tr, te in cv.split(X, y):
            sx = StandardScaler().fit(X[tr])
            Xtr, Xte = sx.transform(X[tr]), sx.transform(X[te])
            ytr, yte = y[tr], y[te]
            if regression:  # standardized targets for both estimators
                mu, sd = ytr.mean(), ytr.std()
                ytr, yte = (ytr - mu) / sd, (yte - mu) / sd
            est = clone(est0)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(Xtr, ytr)
            times.append(time.perf_counter() - t0)
            scores.append(float(est.score(Xte, yte)))
            zeros += int(getattr(est, "zero_network_", False))
        out[label] = {"scores": scores, "mean": float(np.mean(scores)), "std": float(np.std(scores)),
                      "fit_s": float(np.mean(times)), "fit_total_s": float(np.sum(times)), "zero_fits": zeros}
    return out


def grid_search(name: str, X: np.ndarray, y: np.ndarray, alphas: tuple, folds: int, eager: bool = False) -> dict:
    """Wall time, best alpha and best CV score of ``GridSearchCV`` over ``alphas`` for both
    estimators (scaler pipeline, refit included), and the time of reading the refitted
    model's ``certificate_`` afterwards (``certificate_s``: with the default
    ``certify="lazy"`` its branch-and-bound bound is computed then).  ``eager``: first the
    same search with ``certify=True`` (the oracle in every fit, as before the lazy
    default), same process, right before: the same-run A/B; its per-alpha CV scores must
    equal the default's bit for bit (``same_scores_as_eager``)."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    regression = name == "diabetes"
    cv = (KFold if regression else StratifiedKFold)(folds, shuffle=True, random_state=0)
    out = {}
    runs = list(zip(("deepdual", "mlp"), estimators(name, alphas[0])))
    if eager:
        runs.insert(0, ("deepdual_eager", estimators(name, alphas[0], certify=True)[0]))
    for label, est in runs:
        model = make_pipeline(StandardScaler(), est)
        key = f"{type(est).__name__.lower()}__alpha"
        if regression:
            model = TransformedTargetRegressor(regressor=model, transformer=StandardScaler())
            key = "regressor__" + key
        gs = GridSearchCV(model, {key: list(alphas)}, cv=cv, n_jobs=1)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gs.fit(X, y)
        seconds = time.perf_counter() - t0
        fitted = gs.best_estimator_
        fitted = fitted.regressor_ if regression else fitted
        t0 = time.perf_counter()
        cert = getattr(fitted[-1], "certificate_", None)
        out[label] = {"seconds": seconds, "best_alpha": float(gs.best_params_[key]),
                      "best_score": float(gs.best_score_), "refit_s": float(gs.refit_time_),
                      "scores": [float(v) for v in gs.cv_results_["mean_test_score"]],
                      "certificate_s": time.perf_counter() - t0}
        if cert is not None:
            out[label].update(objective=float(cert.objective), lower_bound=float(cert.lower_bound),
                              dual_constraint_how=cert.info.get("dual_constraint_how"))
    if eager:
        out["deepdual"]["same_scores_as_eager"] = out["deepdual"]["scores"] == out["deepdual_eager"]["scores"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 folds, 3 alphas, 600 digits")
    ap.add_argument("--folds", type=int, default=None)
    ap.add_argument("--only", nargs="+", choices=DATASETS, default=None)
    ap.add_argument("--alphas", type=float, nargs="+", default=None)
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    ap.add_argument("--gridsearch", action="store_true", help="also time GridSearchCV over the grid")
    ap.add_argument("--eager", action="store_true",
                    help="with --gridsearch: first the same search with certify=True (same-run A/B)")
    ap.add_argument("--no-cv", action="store_true", help="skip the per-alpha cross-validation table")
    args = ap.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - bench extra
        threadpool_limits = None
    folds = args.folds or (3 if args.quick else 5)
    alphas = tuple(args.alphas or (QUICK_ALPHAS if args.quick else ALPHAS))
    names = args.only or DATASETS
    results = {"machine": platform.platform(), "cpus": os.cpu_count(), "folds": folds, "alphas": alphas,
               "load_average_start": os.getloadavg(),
               "quick": args.quick, "threads": args.threads, "datasets": {}}
    ctx = threadpool_limits(args.threads) if threadpool_limits else None
    if ctx is not None:
        ctx.__enter__()
    try:
        for name in names:
            X, y = load(name, args.quick)
            entry = results["datasets"].setdefault(name, {"n": int(X.shape[0]), "d": int(X.shape[1])})
            if args.gridsearch:
                gs = entry["grid_search"] = grid_search(name, X, y, alphas, folds, eager=args.eager)
                if args.eager:
                    e = gs["deepdual_eager"]
                    print(f"{name:14s} GridSearchCV deepdual certify=True: {e['seconds']:.1f} s (best alpha "
                          f"{e['best_alpha']:g}, {e['best_score']:.4f}, refit {e['refit_s']:.2f} s); default: same "
                          f"CV scores {gs['deepdual']['same_scores_as_eager']}, reading certificate_ afterwards "
                          f"{gs['deepdual']['certificate_s']:.2f} s (lower bound {gs['deepdual'].get('lower_bound')} "
                          f"vs {e.get('lower_bound')})", flush=True)
                print(f"{name:14s} GridSearchCV ({folds} folds, {len(alphas)} alphas, refit included): deepdual "
                      f"{gs['deepdual']['seconds']:.1f} s (best alpha {gs['deepdual']['best_alpha']:g}, "
                      f"{gs['deepdual']['best_score']:.4f}, refit {gs['deepdual']['refit_s']:.2f} s)  MLP "
                      f"{gs['mlp']['seconds']:.1f} s (best alpha {gs['mlp']['best_alpha']:g}, "
                      f"{gs['mlp']['best_score']:.4f}, refit {gs['mlp']['refit_s']:.2f} s)", flush=True)
            if args.no_cv:
                continue
            rows = {}
            for a in alphas:
                rows[a] = cross_validate(name, X, y, a, folds)
                r = rows[a]
                print(f"{name:14s} alpha={a:<7g} deepdual {r['deepdual']['mean']:.4f} +- {r['deepdual']['std']:.4f}"
                      f" ({r['deepdual']['fit_s']:.2f} s/fit, zero {r['deepdual']['zero_fits']})   "
                      f"MLP {r['mlp']['mean']:.4f} +- {r['mlp']['std']:.4f} ({r['mlp']['fit_s']:.2f} s/fit)",
                      flush=True)
            summary = {}
            for label in ("deepdual", "mlp"):
                best = max(alphas, key=lambda a: rows[a][label]["mean"])
                b = rows[best][label]
                summary[label] = {"best_alpha": best, "mean": b["mean"], "std": b["std"],
                                  "stderr": b["std"] / math.sqrt(folds), "fit_s": b["fit_s"],
                                  "grid_total_s": float(sum(rows[a][label]["fit_total_s"] for a in alphas))}
            d, m = summary["deepdual"], summary["mlp"]
            noise = math.hypot(d["stderr"], m["stderr"])
            summary["difference"] = d["mean"] - m["mean"]
            summary["noise"] = noise
            summary["within_noise"] = bool(d["mean"] >= m["mean"] - 2 * noise)
            summary["fit_time_ratio"] = d["fit_s"] / m["fit_s"]
            entry.update(grid={str(a): rows[a] for a in alphas}, tuned=summary)
            print(f"{name:14s} tuned: deepdual {d['mean']:.4f} +- {d['stderr']:.4f} (alpha {d['best_alpha']:g}, "
                  f"{d['fit_s']:.2f} s/fit)  MLP {m['mean']:.4f} +- {m['stderr']:.4f} (alpha {m['best_alpha']:g}, "
                  f"{m['fit_s']:.2f} s/fit)  difference {summary['difference']:+.4f} (2 x noise "
                  f"{2 * noise:.4f}: {'within' if summary['within_noise'] else 'OUTSIDE'})  "
                  f"fit-time ratio {summary['fit_time_ratio']:.2f}", flush=True)
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
    results["load_average_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
