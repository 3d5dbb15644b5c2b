r"""Direct (non-convex) training of the same parallel network on the same objective.

:func:`train` is the PyTorch baseline that the closed forms and certificates are
compared with.  It minimizes exactly deepdual's objective (docs/theory.md §1)

.. math::

    P(\theta) = \ell(f_\theta(X), Y) + \frac{\beta}{2}\sum_j\sum_l \|W_{l,j}\|_F^2

(squared loss :math:`\ell = \tfrac12\|F - Y\|_F^2`, a *sum* over samples; biases are
not penalized) over a parallel network of fixed widths, with SGD, Adam or L-BFGS.

Mini-batches
------------
A batch :math:`B` of size :math:`b` is scaled so that its gradient is an unbiased
estimate of the full objective's gradient:

.. math:: P_B(\theta) = \frac{n}{b}\,\ell(f_\theta(X_B), Y_B) + \frac{\beta}{2}\sum_{j,l}\|W_{l,j}\|_F^2,
   \qquad \mathbb{E}_B[\nabla P_B] = \nabla P .

The recorded history is always the *full* objective :math:`P(\theta)`, evaluated on all
``n`` samples after each epoch, so it is directly comparable with
:attr:`deepdual.Solution.objective` and :attr:`deepdual.Certificate.lower_bound`.

Weight decay in PyTorch's convention
------------------------------------
The penalty is added to the loss explicitly (no optimizer ``weight_decay``).  To train
the same objective with an optimizer's ``weight_decay=lam`` (SGD or Adam, which add
``lam * W`` to the gradient, i.e. the penalty :math:`(\lambda/2)\|W\|^2`):

* on the summed loss ``0.5 * ((f - y)**2).sum()`` use ``lam = beta``;
* on the mean loss ``0.5 * ((f - y)**2).mean()`` use ``lam = beta / n`` (the whole
  objective is then divided by ``n``, which changes the effective learning rate but
  not the minimizers).

``AdamW``'s decoupled decay is *not* this penalty.  Do not put the biases into the
decayed parameter group: deepdual does not penalize them.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ._validation import check_beta, check_choice, check_depth, check_positive, check_X_y
from .losses import CrossEntropyLoss, HingeLoss, LogisticLoss, Loss, SquaredLoss, get_loss
from .network import ACTIVATIONS, Network
from .objective import objective as _objective

__all__ = ["train", "TrainResult", "OPTIMIZERS", "FORMULATIONS", "norm_constrained_objective"]

OPTIMIZERS = ("sgd", "adam", "lbfgs")
FORMULATIONS = ("weight_decay", "norm_constrained")

#: forward passes with fewer multiply-adds than this run single-threaded on the CPU by default:
#: below it torch's intra-op thread synchronization dominates (measured 20x slower with two
#: busy cores for a 60 x 64 -> 50 -> 50 -> 10 network)
SMALL_PROBLEM = 2**24

#: default number of epochs per optimizer (an L-BFGS epoch runs ``lbfgs_iter`` iterations)
DEFAULT_EPOCHS = {"sgd": 1000, "adam": 1000, "lbfgs": 50}


@dataclass
class TrainResult:
    """Result of :func:`train`.

    Attributes
    ----------
    network : Network
        The trained network in deepdual's layout (float64 copy of the weights).
    history : list of float
        Full-data objective :math:`P(\\theta)` (deepdual's convention) at
        initialization (``history[0]``) and after each epoch; empty when ``history=False``.
    final_objective : float
        ``deepdual.objective(network, X, y, beta=beta, loss=loss)`` in float64 (for
        ``formulation="norm_constrained"``: :func:`norm_constrained_objective`).
    seconds : float
        Wall time of the training loop.
    epochs : int
        Epochs actually run (fewer than requested if training diverged).
    diverged : bool
        True if the objective became non-finite; ``network`` is then the last
        finite iterate.
    module : torch.nn.Module
        The trained PyTorch module (a deepdual ``ParallelNetwork``).
    config : dict
        The settings used (optimizer, lr, epochs, batch size, device, dtype, ...).
    """

    network: Network
    history: list[float]
    final_objective: float
    seconds: float
    epochs: int
    diverged: bool = False
    module: Any = None
    config: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"TrainResult(final_objective={self.final_objective:.10g}, epochs={self.epochs}, "
            f"optimizer={c.get('optimizer')!r}, lr={c.get('lr')}, seconds={self.seconds:.3g}"
            f"{', DIVERGED' if self.diverged else ''})"
        )


# ---------------------------------------------------------------------------- helpers
def _resolve_device(torch: Any, device: Any) -> Any:
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"`device` must be 'auto', 'cpu', 'cuda' or a torch.device, got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"`device` {device!r} is not a valid torch device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("`device` is 'cuda' but torch reports no CUDA device; use device='auto' or 'cpu'")
    return dev


def _resolve_dtype(torch: Any, dtype: Any) -> Any:
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"`dtype` must be float32 or float64, got {dtype}")
        return dtype
    names = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32, "float": torch.float32}
    if isinstance(dtype, str) and dtype in names:
        return names[dtype]
    if dtype in (np.float64, np.dtype("float64")):
        return torch.float64
    if dtype in (np.float32, np.dtype("float32")):
        return torch.float32
    raise ValueError(f"`dtype` must be 'float64' or 'float32' (or the torch dtype), got {dtype!r}")


def _hidden_widths(width: Any, depth: int) -> list[int]:
    if width is None:
        return [32] * (depth - 1)
    if isinstance(width, (numbers.Integral, np.integer)) and not isinstance(width, bool):
        widths = [int(width)] * (depth - 1)
    elif isinstance(width, (list, tuple)):
        if len(width) != depth - 1:
            raise ValueError(f"`width` must be an int or a list of depth - 1 = {depth - 1} ints, got {len(width)}")
        widths = []
        for w in width:
            if isinstance(w, bool) or not isinstance(w, (numbers.Integral, np.integer)):
                raise TypeError(f"`width` entries must be integers, got {w!r}")
            widths.append(int(w))
    else:
        raise TypeError(f"`width` must be an int or a list of ints, got {type(width).__name__}")
    if min(widths) < 1:
        raise ValueError(f"`width` must be >= 1, got {width!r}")
    return widths


def _torch_loss(torch: Any, lossf: Loss):
    """Per-sample-summed loss as a torch function of (F, Y); exact match of ``lossf.value``."""
    F_ = torch.nn.functional
    if type(lossf) is SquaredLoss:
        return lambda F, Y: 0.5 * ((F - Y) ** 2).sum()
    if type(lossf) is LogisticLoss:
        return lambda F, Y: F_.softplus(-Y * F).sum()
    if type(lossf) is HingeLoss:
        return lambda F, Y: torch.relu(1.0 - Y * F).sum()
    if type(lossf) is CrossEntropyLoss:
        return lambda F, Y: (torch.logsumexp(F, dim=1) - (Y * F).sum(dim=1)).sum()

    class _NumpyLoss(torch.autograd.Function):
        """A user-defined :class:`~deepdual.losses.Loss` through its value and gradient (CPU round trip)."""

        @staticmethod
        def forward(ctx, F, Y):
            Fn, Yn = F.detach().cpu().double().numpy(), Y.detach().cpu().double().numpy()
            ctx.save_for_backward(F, Y)
            return torch.as_tensor(float(lossf.value(Fn, Yn)), dtype=F.dtype, device=F.device)

        @staticmethod
        def backward(ctx, g):
            F, Y = ctx.saved_tensors
            G = lossf.gradient(F.detach().cpu().double().numpy(), Y.detach().cpu().double().numpy())
            return g * torch.as_tensor(np.asarray(G), dtype=F.dtype, device=F.device), None

    return _NumpyLoss.apply


def _init_module(torch: Any, module: Any, activation: str, init_scale: float, gen: Any) -> None:
    """Gaussian init: ``W ~ N(0, gain^2 / fan_in) * init_scale`` (He gain sqrt(2) before a ReLU)."""
    with torch.no_grad():
        for layers in module.subnets:
            for l, lin in enumerate(layers):
                fan_in = lin.weight.shape[1]
                gain = math.sqrt(2.0) if (activation == "relu" and l < len(layers) - 1) else 1.0
                w = torch.randn(lin.weight.shape, generator=gen, dtype=torch.float64) * (gain * init_scale / math.sqrt(fan_in))
                lin.weight.copy_(w.to(lin.weight.dtype))
                if lin.bias is not None:
                    lin.bias.zero_()
        if module.output_bias is not None:
            module.output_bias.zero_()


def _make_forward(torch: Any, module: Any):
    """The module's forward pass, batched over sub-networks when they share their widths.

    ``ParallelNetwork.forward`` loops over the ``m`` sub-networks in Python; stacking each
    layer's weights into an ``(m, m_l, m_{l-1})`` tensor computes the same sum with one
    batched matmul per layer (many times faster for many small sub-networks).
    """
    subnets = [list(layers) for layers in module.subnets]
    m = len(subnets)
    shapes = {tuple((tuple(lin.weight.shape), lin.bias is not None) for lin in layers) for layers in subnets}
    if m == 1 or len(shapes) != 1:
        return module
    L = len(subnets[0])
    relu = module.activation == "relu"
    has_bias = [subnets[0][l].bias is not None for l in range(L)]

    def forward(x):
        a = x.unsqueeze(0)  # (1, n, d), broadcast over sub-networks
        for l in range(L):
            W = torch.stack([layers[l].weight for layers in subnets])  # (m, out, in)
            a = torch.matmul(a, W.transpose(1, 2))
            if has_bias[l]:
                a = a + torch.stack([layers[l].bias for layers in subnets]).unsqueeze(1)
            if relu and l < L - 1:
                a = torch.relu(a)
        out = a.sum(dim=0)
        if module.output_bias is not None:
            out = out + module.output_bias
        return out

    return forward


def _default_lr(optimizer: str, X: np.ndarray, beta: float) -> float:
    if optimizer == "lbfgs":
        return 1.0  # L-BFGS with a strong-Wolfe line search: unit step is the natural scale
    if optimizer == "adam":
        return 1e-2  # Adam is invariant to the gradient's scale; 1e-2 suits weights of order one
    # SGD: the loss's curvature in the first layer scales with ||X||_2^2 (summed loss) and the
    # penalty's with beta; 0.1 / (||X||_2^2 + beta) is a conservative step for O(1) later layers.
    s = float(np.linalg.norm(X, 2)) if X.size else 1.0
    return 0.1 / (s * s + beta)


# ---------------------------------------------------------------------------- public
def _check_int(value: Any, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or value < lo:
        raise ValueError(f"`{name}` must be an integer >= {lo}, got {value!r}")
    return int(value)


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {value!r}")
    return bool(value)


def train(
    X: Any,
    y: Any,
    *,
    beta: float,
    depth: int | None = None,
    activation: str = "relu",
    width: int | Sequence[int] | None = None,
    n_subnetworks: int = 1,
    bias: bool = False,
    loss: Any = "squared",
    optimizer: str = "sgd",
    lr: float | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    momentum: float = 0.0,
    lbfgs_iter: int = 20,
    init_scale: float = 1.0,
    formulation: str = "weight_decay",
    trunk_norm: float = 1.0,
    seed: int = 0,
    device: Any = "auto",
    dtype: Any = "float64",
    init: Network | None = None,
    progress: bool = True,
    history: bool = True,
    callback: Callable[[int, Any], None] | None = None,
    threads: int | None = None,
) -> TrainResult:
    r"""Train a parallel network on deepdual's objective with SGD, Adam or L-BFGS.

    Minimizes

    .. math:: P(\theta) = \ell(f_\theta(X), Y) + \frac{\beta}{2}\sum_{j=1}^{m}\sum_{l=1}^{L}\|W_{l,j}\|_F^2

    (the objective of :func:`deepdual.objective`) over a network with ``n_subnetworks``
    parallel sub-networks of depth ``depth`` and hidden widths ``width``.  With
    ``batch_size = b < n`` each step uses the unbiased estimate
    :math:`\frac{n}{b}\ell(f(X_B), Y_B) + \text{penalty}` (see the module docstring);
    the penalty is part of the loss, not an optimizer ``weight_decay``.

    With ``formulation="norm_constrained"`` it minimizes instead the paper's
    norm-constrained problem (see :mod:`deepdual.relu.whitened.solver`)

    .. math:: \ell(f_\theta(X), Y) + \frac{\beta}{2}\sum_j\big(\|W_{L-1,j}\|_F^2 + \|W_{L,j}\|_F^2\big)
              \quad\text{s.t.}\quad \|W_{l,j}\|_F \le t,\ l \le L-2,

    by projected gradient steps: after every step each constrained layer is scaled back
    onto the ball :math:`\|W\|_F \le t` (``t = trunk_norm``).

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,) or (n, K)
    beta : float > 0
        Weight-decay strength (sum convention; equals PyTorch's ``weight_decay`` on a
        summed loss, ``beta / n`` on a mean loss).
    depth : int >= 2, optional
        Number of layers L; default 2, or ``init.depth``.
    activation : {"relu", "linear"}
    width : int or list of int, optional
        Hidden widths ``m_1..m_{L-1}`` of every sub-network (default 32).
    n_subnetworks : int
        Number ``m`` of parallel sub-networks (1: an ordinary network).
    bias : bool
        Unpenalized biases on every hidden layer and the output.
    loss : str or Loss
        ``"squared"``, ``"logistic"``, ``"cross_entropy"``, ``"hinge"`` or a
        :class:`~deepdual.losses.Loss` (a custom loss is evaluated on the CPU).
    optimizer : {"sgd", "adam", "lbfgs"}
        L-BFGS is full batch (strong-Wolfe line search, ``lbfgs_iter`` iterations per epoch).
    lr : float, optional
        Step size; default ``0.1 / (||X||_2^2 + beta)`` for SGD, ``1e-2`` for Adam,
        ``1`` for L-BFGS.
    epochs : int, optional
        Default 1000 (SGD, Adam) or 50 (L-BFGS).
    batch_size : int, optional
        ``None``: full batch.
    momentum : float
        SGD (heavy-ball) momentum.
    lbfgs_iter : int
        L-BFGS iterations per epoch.
    init_scale : float
        Weights start as :math:`\mathcal{N}(0, g^2/\text{fan\_in})` times ``init_scale``,
        with :math:`g = \sqrt2` before a ReLU and 1 otherwise.
    formulation : {"weight_decay", "norm_constrained"}
        Which objective is trained and reported (see above).
    trunk_norm : float > 0
        The bound ``t`` of the norm-constrained formulation.
    seed : int
        Seeds the initialization and the batch order.
    device : "auto", "cpu", "cuda" or torch.device
        ``"auto"``: CUDA when available.
    dtype : "float64" (default) or "float32"
    init : Network, optional
        Start from these weights (architecture, activation and biases taken from it).
    progress : bool
        Show a tqdm progress bar (when tqdm is installed).
    history : bool
        Record the full objective after every epoch.
    callback : callable, optional
        ``callback(epoch, module)`` after initialization (epoch 0) and after every
        epoch, with the torch module (e.g. to track test accuracy); called under
        ``torch.no_grad()``.
    threads : int, optional
        CPU threads for torch during training (restored afterwards).  Default: one
        thread for small problems on the CPU (fewer than ``SMALL_PROBLEM`` multiply-adds
        per forward pass), where thread synchronization costs more than it saves, and
        torch's current setting otherwise.

    Returns
    -------
    TrainResult

    Raises
    ------
    ImportError
        If PyTorch is not installed (``pip install deepdual[torch]``).

    Examples
    --------
    >>> import numpy as np, deepdual
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((20, 5)), rng.standard_normal(20)
    >>> res = deepdual.train(X, y, beta=1.0, activation="linear", optimizer="lbfgs",
    ...                      epochs=10, progress=False)
    >>> cert = deepdual.certify(res.network, X, y, beta=1.0)
    >>> bool(cert.lower_bound <= res.final_objective)
    True
    """
    from ._torch import parallel_network_class, require_torch

    torch = require_torch()
    beta = check_beta(beta)
    activation = check_choice(activation, "activation", ACTIVATIONS)
    optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
    formulation = check_choice(formulation, "formulation", FORMULATIONS)
    trunk_norm = check_positive(trunk_norm, "trunk_norm")
    lossf = get_loss(loss)
    bias = _check_flag(bias, "bias")
    progress = _check_flag(progress, "progress")
    history = _check_flag(history, "history")
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)):
        raise TypeError(f"`seed` must be an integer, got {type(seed).__name__}")
    n_subnetworks = _check_int(n_subnetworks, "n_subnetworks", 1)
    epochs = _check_int(DEFAULT_EPOCHS[optimizer] if epochs is None else epochs, "epochs", 0)
    lbfgs_iter = _check_int(lbfgs_iter, "lbfgs_iter", 1)
    momentum = check_positive(momentum, "momentum", allow_zero=True)
    init_scale = check_positive(init_scale, "init_scale")
    if threads is not None:
        threads = _check_int(threads, "threads", 1)
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable or None, got {type(callback).__name__}")
    if formulation == "norm_constrained" and optimizer == "lbfgs":
        raise ValueError("`optimizer='lbfgs'` cannot keep the norm constraint; use 'sgd' or 'adam' "
                         "(projected steps) with formulation='norm_constrained'")

    X, Y, scalar = check_X_y(X, y)
    Y = lossf.check_labels(Y)
    n, d = X.shape
    K = Y.shape[1]
    if batch_size is not None:
        batch_size = min(_check_int(batch_size, "batch_size", 1), n)
        if optimizer == "lbfgs" and batch_size < n:
            raise ValueError("`batch_size` must be None with optimizer='lbfgs' (L-BFGS is a full-batch method)")
    lr = _default_lr(optimizer, X, beta) if lr is None else check_positive(lr, "lr")

    dev = _resolve_device(torch, device)
    tdtype = _resolve_dtype(torch, dtype)
    gen = torch.Generator().manual_seed(int(seed))
    if init is not None:
        if not isinstance(init, Network):
            raise TypeError(f"`init` must be a deepdual.Network or None, got {type(init).__name__}")
        init.validate("init")
        if init.activation != activation:
            raise ValueError(f"`init` has activation {init.activation!r} but `activation` is {activation!r}")
        if depth is not None and check_depth(depth) != init.depth:
            raise ValueError(f"`init` has depth {init.depth} but `depth` is {depth}")
        if init.input_dim != d or init.n_outputs != K:
            raise ValueError(f"`init` maps {init.input_dim} -> {init.n_outputs} but the data is {d} -> {K}")
        depth = init.depth
        module = init.to_torch(dtype=tdtype)
        module.scalar_output = scalar and K == 1
    else:
        depth = 2 if depth is None else check_depth(depth)
        hidden = _hidden_widths(width, depth)
        widths = [[d, *hidden, K] for _ in range(n_subnetworks)]
        module = parallel_network_class()(widths, activation, hidden_bias=bias, output_bias=bias,
                                          scalar_output=scalar and K == 1, dtype=tdtype)
        _init_module(torch, module, activation, init_scale, gen)
    module = module.to(dev)

    cfg = _Config(optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, momentum=momentum,
                  lbfgs_iter=lbfgs_iter, formulation=formulation, trunk_norm=trunk_norm, beta=beta,
                  depth=depth, activation=activation, seed=int(seed), init_scale=init_scale,
                  history=history, progress=progress)
    macs = n * sum(lin.weight.numel() for layers in module.subnets for lin in layers)
    if threads is None and dev.type == "cpu" and macs < SMALL_PROBLEM:
        threads = 1
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train_loop(torch, module, X, Y, scalar, lossf, cfg, dev, tdtype, gen, callback)
    finally:
        torch.set_num_threads(old_threads)


@dataclass
class _Config:
    optimizer: str
    lr: float
    epochs: int
    batch_size: int | None
    momentum: float
    lbfgs_iter: int
    formulation: str
    trunk_norm: float
    beta: float
    depth: int
    activation: str
    seed: int
    init_scale: float
    history: bool
    progress: bool


def _train_loop(torch: Any, module: Any, X: np.ndarray, Y: np.ndarray, scalar: bool, lossf: Loss, cfg: _Config,
                dev: Any, tdtype: Any, gen: Any, callback: Any) -> TrainResult:
    n, K = Y.shape
    L = cfg.depth
    Xt = torch.as_tensor(X, dtype=tdtype, device=dev)
    Yt = torch.as_tensor(Y, dtype=tdtype, device=dev)
    loss_fn = _torch_loss(torch, lossf)
    forward = _make_forward(torch, module)
    constrained = cfg.formulation == "norm_constrained"
    # layers l <= L-2 (1-based) of every sub-network: norm-bounded instead of penalized
    trunk = [lin.weight for layers in module.subnets for lin in list(layers)[: L - 2]] if constrained else []
    trunk_ids = {id(W) for W in trunk}
    penalized = [lin.weight for layers in module.subnets for lin in layers if id(lin.weight) not in trunk_ids]
    params = list(module.parameters())
    beta = cfg.beta

    def penalty():
        return 0.5 * beta * sum((W * W).sum() for W in penalized)

    def project() -> None:
        with torch.no_grad():
            for W in trunk:
                nrm = torch.linalg.vector_norm(W)
                if nrm > cfg.trunk_norm:
                    W.mul_(cfg.trunk_norm / nrm)

    def full_objective() -> float:
        with torch.no_grad():
            return float(loss_fn(forward(Xt), Yt) + penalty())

    def call(epoch: int) -> None:
        if callback is not None:
            with torch.no_grad():
                callback(epoch, module)

    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)
    elif cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.lr)
    else:
        # run every epoch to its iteration budget: convergence is judged by the caller's
        # certificate, not by torch's stopping rules (hence tolerances near float64 eps)
        tol = 1e-12 if tdtype == torch.float64 else 1e-6
        opt = torch.optim.LBFGS(params, lr=cfg.lr, max_iter=cfg.lbfgs_iter, history_size=50,
                                tolerance_grad=tol, tolerance_change=tol * 1e-3, line_search_fn="strong_wolfe")

    project()
    hist: list[float] = [full_objective()] if cfg.history else []
    call(0)
    bs = n if cfg.batch_size is None else cfg.batch_size
    last_good = [p.detach().clone() for p in params]
    diverged = False
    ran = 0
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with the [torch] extra
        tqdm = None
    bar = None
    epochs_iter: Any = range(cfg.epochs)
    if cfg.progress and tqdm is not None and cfg.epochs > 0:
        bar = tqdm(epochs_iter, desc=f"train {cfg.optimizer} L={L}", leave=False, dynamic_ncols=True)
        epochs_iter = bar
    t0 = time.perf_counter()
    for _ in epochs_iter:
        if cfg.optimizer == "lbfgs":
            def closure():
                opt.zero_grad()
                v = loss_fn(forward(Xt), Yt) + penalty()
                v.backward()
                return v

            opt.step(closure)
        else:
            order = torch.randperm(n, generator=gen).to(dev) if bs < n else None
            for start in range(0, n, bs):
                if order is None:
                    Xb, Yb, scale = Xt, Yt, 1.0
                else:
                    idx = order[start:start + bs]
                    Xb, Yb, scale = Xt[idx], Yt[idx], n / idx.numel()
                opt.zero_grad()
                v = scale * loss_fn(forward(Xb), Yb) + penalty()
                v.backward()
                opt.step()
                project()
        ran += 1
        val = full_objective() if (cfg.history or bar is not None) else None
        if val is None:  # one reduction (a single device sync) instead of a check per tensor
            with torch.no_grad():
                finite = math.isfinite(float(sum(p.sum() for p in params)))
        else:
            finite = math.isfinite(val)
        if not finite:
            diverged = True
            with torch.no_grad():
                for p, q in zip(params, last_good):
                    p.copy_(q)
            warnings.warn(
                f"training diverged (non-finite objective) after {ran} epoch(s) with lr={cfg.lr:g}; "
                "returning the last finite iterate", RuntimeWarning, stacklevel=3,
            )
            if cfg.history:
                hist.append(float("inf"))
            break
        with torch.no_grad():
            for p, q in zip(params, last_good):
                q.copy_(p)
        if cfg.history:
            hist.append(val)
        call(ran)
        if bar is not None:
            bar.set_postfix(objective=f"{val:.6g}", refresh=False)
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.close()


    net = Network.from_torch(module, activation=cfg.activation, scalar_output=scalar and K == 1)
    if constrained:
        final = norm_constrained_objective(net, X, Y, beta=beta, loss=lossf, trunk_norm=cfg.trunk_norm)
    else:
        final = _objective(net, X, Y, beta=beta, loss=lossf)
    config = dict(vars(cfg))
    config.pop("history")
    config.pop("progress")
    config.update(widths=net.widths[0], n_subnetworks=net.n_subnetworks, bias=net.has_biases, loss=lossf.name,
                  device=str(dev), dtype=str(tdtype).replace("torch.", ""))
    return TrainResult(network=net, history=hist, final_objective=float(final), seconds=seconds,
                       epochs=ran, diverged=diverged, module=module, config=config)


def norm_constrained_objective(network: Network, X: Any, y: Any, *, beta: float, loss: Any = "squared",
                               trunk_norm: float = 1.0) -> float:
    r"""Objective of the norm-constrained formulation,
    :math:`\ell(f(X), Y) + \frac\beta2\sum_j(\|W_{L-1,j}\|_F^2 + \|W_{L,j}\|_F^2)`
    (re-exported from :mod:`deepdual.relu.whitened.solver`; raises ``ValueError``
    when a layer :math:`l \le L-2` violates :math:`\|W_{l,j}\|_F \le t`)."""
    from .relu.whitened.solver import norm_constrained_objective as f

    return f(network, X, y, beta=beta, loss=loss, trunk_norm=trunk_norm)
