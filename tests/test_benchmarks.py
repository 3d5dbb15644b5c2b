"""The timing harness of ``benchmarks/bench_torch.py``: racing a learning-rate grid and the
"first time within 1e-3 of the optimum" bookkeeping.  No wall times are asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

bench_torch = pytest.importorskip("bench_torch")


class _FakeRun:
    """A run whose steps take ``dt`` charged seconds each and which reaches the target after
    ``hit_step`` steps (never if None); the interface ``race`` uses."""

    def __init__(self, dt: float, hit_step: int | None, diverge_step: int | None = None):
        self.dt, self.hit_step, self.diverge_step = dt, hit_step, diverge_step
        self.clock = 0.0
        self.steps = 0
        self.hit = None
        self.diverged = False
        self.stopped = ""
        self.best = np.inf  # objective so far: decreases with the steps

    @property
    def done(self) -> bool:
        return self.hit is not None or self.diverged or bool(self.stopped)

    def advance(self) -> None:
        self.steps += 1
        self.clock += self.dt
        self.best = 1.0 / self.steps
        if self.diverge_step is not None and self.steps >= self.diverge_step:
            self.diverged = True
        elif self.hit_step is not None and self.steps >= self.hit_step:
            self.hit = self.clock

    def alone(self, cap: float) -> float | None:
        """Time to target when run alone to the cap."""
        if self.hit_step is None or (self.diverge_step is not None and self.diverge_step <= self.hit_step):
            return None
        t = self.hit_step * self.dt
        return t if t - self.dt < cap else None


@pytest.mark.parametrize("seed", range(20))
def test_race_finds_the_fastest_run_and_its_time(seed):
    rng = np.random.default_rng(seed)
    specs = []
    for _ in range(rng.integers(1, 6)):
        dt = float(rng.uniform(0.01, 0.2))
        hit = int(rng.integers(1, 200)) if rng.random() < 0.7 else None
        div = int(rng.integers(1, 50)) if rng.random() < 0.2 else None
        specs.append((dt, hit, div))
    cap = float(rng.uniform(0.5, 20))
    expected = [_FakeRun(*s).alone(cap) for s in specs]
    runs = bench_torch.race([_FakeRun(*s) for s in specs], cap)
    assert all(r.done for r in runs)
    reached = [e for e in expected if e is not None]
    fastest = bench_torch._fastest(runs)
    if reached:
        assert fastest.hit == pytest.approx(min(reached))
        # every run that reached the target in the race reached it when run alone, at the same time
        for r, e in zip(runs, expected):
            if r.hit is not None:
                assert r.hit == pytest.approx(e)
    else:
        assert all(r.hit is None for r in runs)
        # nothing reached: every non-diverged run was taken to the cap
        for r in runs:
            assert r.diverged or (r.stopped == "cap" and r.clock >= cap)


def test_training_run_records_first_time_within_target():
    torch = pytest.importorskip("torch")
    import deepdual
    from bench_closed_forms import Problem

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    y = X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(40)
    beta = 0.3 * float(np.linalg.norm(X.T @ y))
    p = Problem("toy", "toy", X, y, beta, 2, "linear")
    sol = deepdual.solve(X, y, beta=beta, depth=2, activation="linear")
    target = sol.objective * (1 + bench_torch.TARGET_RTOL)
    for optimizer, lr in (("lbfgs", None), ("adam", 1e-2), ("minibatch_adam", 1e-2)):
        run = bench_torch._Run(torch, p, target, optimizer=optimizer, width=4, seed=0, lr=lr, batch=16)
        bench_torch.race([run], cap=20.0)
        assert run.hit is not None, optimizer
        assert 0 < run.hit <= run.clock
        assert run.best <= target
        # never below the certified lower bound (training is a feasible network)
        assert run.best >= sol.lower_bound * (1 - 1e-12)
        assert 1 <= run.evals_to_target <= run.evals
    # a target below the optimum is never reached: the run is stopped at the cap
    run = bench_torch._Run(torch, p, sol.lower_bound * (1 - 1e-6), optimizer="lbfgs", width=4, seed=0)
    bench_torch.race([run], cap=0.3)
    assert run.hit is None and run.stopped in ("cap", "ended")


@pytest.mark.parametrize("d", [3, 6])
def test_oracle_grid_bounds_are_proven_and_the_anytime_gap_never_grows(d):
    """``benchmarks/bench_oracle_grid.py`` on a tiny instance (d = 3: direction-space search,
    d = 6: row-sign search): every recorded lower bound is at or below the certified global
    optimum (hence the objective), every recorded upper bound on c(v) is at or above the value
    the oracle attained, and the oracle's anytime gap is non-increasing in time."""
    import deepdual
    bench_oracle_grid = pytest.importorskip("bench_oracle_grid")

    rng = np.random.default_rng(d)
    X = rng.standard_normal((40, d))
    y = np.maximum(X @ rng.standard_normal(d), 0) - np.maximum(X @ rng.standard_normal(d), 0)
    y = y + 0.1 * rng.standard_normal(40)
    r = bench_oracle_grid.run_instance(f"tiny d={d}", X, y, budget=1.0, checkpoints=(0.05, 0.2, 0.5, 1.0))
    assert r["checkpoints"] == [0.05, 0.2, 0.5, 1.0]
    obj = r["objective"]
    lows = [r["spectral"]["lower_bound"], *r["oracle"]["lower_bound"], *r.get("scip", {}).get("lower_bound", [])]
    ups = [r["spectral"]["c"], *[c for c in r["oracle"]["c"] if c is not None],
           *[c for c in r.get("scip", {}).get("c", []) if c is not None]]
    assert all(lo <= obj * (1 + 1e-12) for lo in lows)
    assert all(c >= r["oracle"]["c_attained"] * (1 - 1e-9) for c in ups)
    if "scip" in r:  # SCIP's child processes ran to their end and streamed their traces
        assert r["scip"]["crashed"] == [] and r["scip"]["trace"]["plus"][-1][0] > 0
    if d == 3:  # small enough for the certified global optimum: weak duality against it
        opt = deepdual.solve(X, y, beta=1.0, method="convex", strategy="column_generation", rtol=1e-6, rng=0)
        assert opt.objective - opt.lower_bound <= 1e-5 * opt.objective
        assert all(lo <= opt.objective * (1 + 1e-9) for lo in lows)
    gaps = r["oracle"]["gap"]
    assert all(0.0 <= g <= 1.0 for g in gaps)
    assert all(b <= a + 1e-12 for a, b in zip(gaps, gaps[1:]))
    trace = np.array(r["oracle"]["trace"])  # (time, attained, bound): the raw history
    assert np.all(np.diff(trace[:, 0]) >= 0) and np.all(np.diff(trace[:, 2]) <= 1e-12 * trace[0, 2])
    assert r["oracle"]["c_end"] <= min(c for c in r["oracle"]["c"] if c is not None) * (1 + 1e-12)
