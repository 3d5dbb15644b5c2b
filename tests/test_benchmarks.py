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
