r"""The training problem a network belongs to: loss, weight decay and bias convention.

A network's objective

.. math:: P(\theta) = \ell(f_\theta(X), Y) + \frac\beta2\Big(\sum_{j,l}\|W_{l,j}\|_F^2
          + [\text{penalized}]\ \sum \|b\|^2\Big)

(docs/theory.md §1) depends on three numbers that the weights do not carry: the loss
:math:`\ell`, the weight decay :math:`\beta` and whether the biases are penalized.  A
network returned by :func:`deepdual.solve` records them in :attr:`deepdual.Network.problem`
(a dict with the keys of :data:`PROBLEM_KEYS`); :meth:`deepdual.Network.save` stores them in
the ``.npz`` file, and :func:`deepdual.certify` (and ``deepdual certify``) uses them by
default and refuses an argument that contradicts them, so that a saved network is certified
for the problem it was solved for (docs/cli.md).
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

import numpy as np

from ._validation import check_beta
from .losses import LOSSES, Loss, get_loss

__all__ = ["PROBLEM_KEYS", "check_problem", "problem_to_json", "problem_from_json", "problem_of_solve",
           "resolve_problem"]

#: keys of :attr:`deepdual.Network.problem`: loss name, weight decay, bias convention, and the
#: penalty when it is not weight decay (``"l_L"``: deep narrow networks, docs/one_dimensional.md §10)
PROBLEM_KEYS = ("loss", "beta", "penalize_biases", "regularization", "formulation")

#: relative tolerance under which a given ``beta`` agrees with the stored one (decimal
#: round trips such as a CLI ``--beta 0.1`` are exact; this only absorbs arithmetic noise)
BETA_RTOL = 1e-12


def check_problem(problem: Any, name: str = "problem") -> dict[str, Any] | None:
    """Validate a problem record: ``None`` or a mapping with keys among :data:`PROBLEM_KEYS`
    (``loss``: a name in :data:`deepdual.losses.LOSSES`; ``beta``: a finite number > 0;
    ``penalize_biases``: a bool).  Returns a new plain dict (or None)."""
    if problem is None:
        return None
    if not isinstance(problem, Mapping):
        raise TypeError(f"`{name}` must be a dict with keys among {PROBLEM_KEYS} or None, "
                        f"got {type(problem).__name__}")
    unknown = sorted(set(map(str, problem)) - set(PROBLEM_KEYS))
    if unknown:
        raise ValueError(f"`{name}` has unknown key(s) {unknown}; expected keys among {PROBLEM_KEYS}")
    out: dict[str, Any] = {}
    if problem.get("loss") is not None:
        loss = problem["loss"]
        if not isinstance(loss, str) or loss not in LOSSES:
            raise ValueError(f"`{name}['loss']` must be one of {sorted(LOSSES)}, got {loss!r}")
        out["loss"] = loss
    if problem.get("beta") is not None:
        out["beta"] = check_beta(problem["beta"], f"{name}['beta']")
    if problem.get("penalize_biases") is not None:
        pb = problem["penalize_biases"]
        if not isinstance(pb, (bool, np.bool_)):
            raise TypeError(f"`{name}['penalize_biases']` must be True or False, got {pb!r}")
        out["penalize_biases"] = bool(pb)
    if problem.get("regularization") is not None:
        reg = problem["regularization"]
        if reg not in ("weight_decay", "l_L", "path"):  # "path": docs/path_regularization.md
            raise ValueError(f"`{name}['regularization']` must be 'weight_decay', 'l_L' or 'path', got {reg!r}")
        out["regularization"] = str(reg)
    if problem.get("formulation") is not None:  # unit-norm first layers at depth 3 (docs/three_layer.md)
        form = problem["formulation"]
        if form != "norm_constrained":
            raise ValueError(f"`{name}['formulation']` must be 'norm_constrained', got {form!r}")
        out["formulation"] = "norm_constrained"
    return out


def problem_to_json(problem: Mapping[str, Any] | None) -> str:
    """JSON text of a validated problem record (``float`` round trips exactly)."""
    return json.dumps(check_problem(problem) or {}, sort_keys=True)


def problem_from_json(text: str, name: str = "problem") -> dict[str, Any] | None:
    """Inverse of :func:`problem_to_json`; ``ValueError`` naming ``name`` for bad text."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` is not valid JSON: {exc}") from None
    return check_problem(data, name) or None


def loss_name(loss: Loss) -> str | None:
    """The registered name of ``loss`` (``None`` for a user-defined loss, which cannot be stored)."""
    name = getattr(loss, "name", None)
    cls = LOSSES.get(name) if isinstance(name, str) else None
    return name if cls is not None and type(loss) is cls else None


def problem_of_solve(network: Any, *, loss: Loss, beta: float, penalize_biases: bool) -> dict[str, Any]:
    """The record :func:`deepdual.solve` attaches to its network.  ``penalize_biases`` is
    recorded only for networks with bias parameters (it does not change the objective of the
    others)."""
    rec: dict[str, Any] = {"beta": float(beta)}
    name = loss_name(loss)
    if name is not None:
        rec["loss"] = name
    if network.has_biases:
        rec["penalize_biases"] = bool(penalize_biases)
    return rec


def _same_beta(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=BETA_RTOL, abs_tol=0.0)


def resolve_problem(network: Any, beta: Any, loss: Any, options: dict[str, Any], *,
                    prefix: str = "") -> tuple[float, Loss, dict[str, Any]]:
    """Combine the arguments of :func:`deepdual.certify` with ``network.problem``.

    An argument left as ``None`` (``beta``, ``loss``; ``penalize_biases`` absent from
    ``options``) takes the stored value; a given argument that contradicts the stored one
    raises ``ValueError`` naming it.  Without a stored value ``beta`` is required and the
    loss defaults to ``"squared"``.  ``prefix`` is put before argument names in messages
    (``"--"`` on the command line).

    Returns
    -------
    beta : float
    loss : Loss
    options : dict
        ``options`` with ``penalize_biases`` filled in from the record for ReLU networks with
        biases (a new dict; the input is not modified).
    """
    stored = check_problem(getattr(network, "problem", None)) or {}
    if prefix:  # command line
        hint = (f" saved with the network ({stored}); omit the option to use the saved value, or save "
                "the network without its problem (network.problem = None) to certify it for another one")
    else:
        hint = (f" (network.problem = {stored}, recorded by solve and kept by Network.save); set "
                "network.problem = None to certify the network for another problem")

    def arg(name: str) -> str:
        return prefix + name.replace("_", "-") if prefix else name

    if beta is None:
        if "beta" not in stored:
            raise TypeError(f"`{arg('beta')}` is required: the network records no weight decay")
        beta = stored["beta"]
    else:
        beta = check_beta(beta, arg("beta"))
        if "beta" in stored and not _same_beta(beta, stored["beta"]):
            raise ValueError(f"`{arg('beta')}` = {beta!r} contradicts beta = {stored['beta']!r}{hint}")
    if loss is None:
        lossf = get_loss(stored.get("loss", "squared"))
    else:
        lossf = get_loss(loss)
        name = loss_name(lossf)
        if "loss" in stored and name != stored["loss"]:
            given = name if name is not None else getattr(lossf, "name", type(lossf).__name__)
            raise ValueError(f"`{arg('loss')}` = {given!r} contradicts loss = {stored['loss']!r}{hint}")
    options = dict(options)
    if "regularization" in stored:
        given = options.get("regularization")
        if given is None:
            options["regularization"] = stored["regularization"]
        elif given != stored["regularization"]:
            raise ValueError(f"`{arg('regularization')}` = {given!r} contradicts regularization = "
                             f"{stored['regularization']!r}{hint}")
    if "penalize_biases" in stored and getattr(network, "activation", None) == "relu":
        given = options.get("penalize_biases")
        if given is None:
            options["penalize_biases"] = stored["penalize_biases"]
        elif isinstance(given, (bool, np.bool_)) and bool(given) != stored["penalize_biases"]:
            raise ValueError(f"`{arg('penalize_biases')}` = {bool(given)} contradicts "
                             f"penalize_biases = {stored['penalize_biases']}{hint}")
    return float(beta), lossf, options
