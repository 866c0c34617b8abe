"""Stacked-seed MLP training with gradient-flow recording (the only place torch trains).

The model (initialisation, forward pass) is :mod:`actflow.model`: all runs of one job are one
model with a leading run dimension. The loss is the sum of the runs' own MSE losses, so each
run's gradient is exactly the gradient of its own loss, and Adam/SGD update every element
independently: run ``r`` follows the trajectory of a separate ``nn.Sequential`` built after
``torch.manual_seed(seed_r)`` and trained by ``torch.optim`` (the tests check every gradient
tensor and every parameter after every step against that, in float64).

Per epoch, per run and per hidden layer the loop records ‖∂L/∂W_l‖_F and ‖∂L/∂z_l‖_F
(z_l = pre-activation) and the loss, into tensors kept on the device and copied to the host
once at the end.

The backward pass is written out by hand (``grad_mode="manual"``, three batched products per
layer and one activation-backward kernel); ``grad_mode="autograd"`` computes the same
gradients with ``torch.autograd`` on the same stacked model (the benchmark compares the two).

On the CPU each epoch's arithmetic runs with subnormal floats flushed to zero
(:func:`denormals_flushed`): saturated Sigmoid layers make gradients and Adam moments far below
float32's smallest normal number (1.2e-38), where x86 cores take a microcode path many times
slower (the 10-layer Sigmoid runs of Experiment 2 trained 8x slower than ReLU's). Every loss,
weight and unit state is the same to the bit (a test checks, on runs that make subnormals), and
the gradient norms are taken with subnormals kept, as they always were.

On CUDA, every epoch after the first GRAPH_WARMUP is replayed from a CUDA graph captured once
(:class:`_GraphedEpoch`): the stacked model is launch-bound there, and one launch an epoch
replaces about a hundred (docs/gpu.md gives the measured gain).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from . import activations, devices, model

log = logging.getLogger("actflow.train")
GRAD_MODES = ("manual", "autograd")


@dataclass(frozen=True)
class Hyper:
    hidden_layers: int = 10  # number of hidden layers, each followed by the activation
    width: int = 64  # units per hidden layer
    epochs: int = 500  # full-batch optimisation steps
    optimizer: str = "adam"  # "adam" (the study's) or "sgd"
    learning_rate: float = 1e-3
    momentum: float = 0.0  # SGD only
    init: str = "pytorch"  # initial weights: actflow.model.INITS
    bias_init: str = "pytorch"  # initial biases: pytorch or zero
    dtype: str = "float32"  # "float64" for the equivalence tests

    def settings(self) -> dict:
        return asdict(self)


@dataclass
class Result:
    loss: np.ndarray  # (epochs, runs): loss before the update of that epoch
    weight_grad: np.ndarray  # (epochs, hidden_layers, runs)
    preact_grad: np.ndarray  # (epochs, hidden_layers, runs)
    final_loss: np.ndarray  # (runs,): loss after the last update
    init_params: dict[str, torch.Tensor]
    final_params: dict[str, torch.Tensor]
    seconds: float
    device: str
    # unit states at checkpoints (actflow.train.unit_states): the epochs (C,) at whose start
    # they were read (epochs + 1: after the last update) and the states (C, hidden_layers,
    # runs, width) as bit flags (UNIT_ZERO | UNIT_NONPOSITIVE | UNIT_VARIES); empty if not asked
    unit_epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    unit_states: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0, 0), dtype=np.uint8))
    diverged_epoch: np.ndarray = field(init=False)  # (runs,), 0 where the run stayed finite
    last_finite_loss: np.ndarray = field(init=False)

    def __post_init__(self):
        bad = ~np.isfinite(self.loss) | ~np.isfinite(self.weight_grad).all(axis=1) | ~np.isfinite(
            self.preact_grad
        ).all(axis=1)
        epochs, runs = self.loss.shape
        first = np.where(bad.any(axis=0), bad.argmax(axis=0) + 1, 0)
        weights_bad = np.zeros(runs, dtype=bool)
        for t in self.final_params.values():
            weights_bad |= ~torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1).numpy()
        weights_bad |= ~np.isfinite(self.final_loss)
        first = np.where((first == 0) & weights_bad, epochs + 1, first)
        self.diverged_epoch = first
        last = np.full(runs, np.nan)
        for r in range(runs):
            finite = np.isfinite(self.loss[:, r])
            stop = first[r] - 1 if first[r] else epochs
            idx = np.flatnonzero(finite[:stop])
            if idx.size:
                last[r] = self.loss[idx[-1], r]
        self.last_finite_loss = last


# Bit flags of a hidden unit's state over the training inputs at a checkpoint.
UNIT_ZERO = 1  # its output is exactly 0 for every input
UNIT_NONPOSITIVE = 2  # its output is <= 0 for every input
UNIT_VARIES = 4  # its output varies over the inputs: max - min > VARY_RTOL * max |output|
# A unit whose outputs differ by less than this share of their magnitude is constant: about 100
# float32 rounding steps (2^-24 = 6e-8), so rounding noise never counts as variation.
VARY_RTOL = 1e-5


def unit_states(hs: list[torch.Tensor]) -> torch.Tensor:
    """(hidden_layers, runs, width) uint8 flags of every hidden unit, from the activations
    ``hs`` (each (runs, n, width)) of one forward pass over the training inputs."""
    out = []
    for h in hs:
        hi, lo = h.amax(dim=1), h.amin(dim=1)
        scale = torch.maximum(hi.abs(), lo.abs())
        flags = ((hi == 0) & (lo == 0)).to(torch.uint8) * UNIT_ZERO
        flags |= (hi <= 0).to(torch.uint8) * UNIT_NONPOSITIVE
        flags |= ((hi - lo) > VARY_RTOL * scale).to(torch.uint8) * UNIT_VARIES
        out.append(flags)
    return torch.stack(out)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(devices.refusal(f"torch {torch.__version__}"))
    return torch.device(device)


def setup_torch(threads: int) -> None:
    """Intra-op threads = the job's threads; freed memory kept for reuse (:func:`keep_freed_memory`)."""
    torch.set_num_threads(max(1, int(threads)))
    keep_freed_memory()


# mallopt(3) parameters of glibc's malloc
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Ask glibc's malloc (mallopt(3)) to keep the memory a training epoch frees for the next
    one, instead of handing it back to the kernel and faulting it in again.

    Each epoch allocates and frees a few MB of 256 KB activation tensors. With glibc's default,
    sliding thresholds those blocks are mapped and unmapped (or the heap trimmed) every epoch:
    about 170 to 250 page faults an epoch for 5 stacked ReLU runs, against about 10 with these
    settings (bench/run.py measures both, and the time). Blocks up to 32 MB (glibc's largest
    mapping threshold) come from the heap; the heap is trimmed only above 1 GiB free. A job's
    peak memory is unchanged: the memory is reused, not added. Returns whether it applied (a
    C library other than glibc, e.g. on macOS, is left as it is)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def _deterministic_cuda() -> None:
    """Deterministic kernels, on CUDA only: the CPU kernels used here are deterministic as they
    are, and the switch imports torch's compiler stack (1.8 s of every job's start-up)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    torch.use_deterministic_algorithms(True, warn_only=True)


class Adam:
    """torch.optim.Adam's update (defaults: betas 0.9, 0.999, eps 1e-8, no weight decay), in
    the order of operations of its foreach implementation, on the packed parameters.

    Written out rather than taken from torch.optim because constructing any torch.optim
    optimizer imports torch's compiler stack (1.35 s of every training job's start-up on a CPU
    core, measured). The tests check every parameter after every step against torch.optim.Adam
    in float64."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8,
                 steps_on_device: int = 0):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0
        self.t_device = None  # the step count on the device, for a CUDA graph (below)
        if steps_on_device:
            # For a CUDA graph, which replays the numbers it was captured with: the step count
            # lives on the device, and each step's two bias corrections are read from tables
            # computed here in float64 exactly as step() computes them, for up to
            # ``steps_on_device`` steps.
            b1, b2 = betas
            ts = range(1, steps_on_device + 1)  # Python floats, as step(): NumPy's ** differs
            dev, dtype = params[0].device, params[0].dtype  # from them in the last bit
            self.step_sizes = torch.tensor([-lr / (1 - b1 ** t) for t in ts], dtype=dtype,
                                           device=dev)
            self.bias2_roots = torch.tensor([(1 - b2 ** t) ** 0.5 for t in ts], dtype=dtype,
                                            device=dev)
            self.t_device = torch.zeros(1, dtype=torch.long, device=dev)
        # The smallest normal number of the dtype, added to v before its square root: torch's
        # CPU square root takes a slow path on zeros (6x slower over a ReLU net's dead units,
        # whose v is exactly 0; measured in bench/run.py). It leaves every v above 2^-102
        # (float32) unchanged bit for bit, and for v = 0 adds under half a unit in the last
        # place of eps: the denominator, and so the step, is the same bits as torch.optim's.
        self.tiny = torch.finfo(params[0].dtype).tiny
        self.denom = [torch.empty_like(p) for p in params]

    def step(self, grads) -> None:
        self._moments(grads)
        if self.t_device is not None:
            return self._finish_on_device()
        b1, b2 = self.betas
        self.t += 1
        step_size = -self.lr / (1 - b1 ** self.t)
        denom = self.denom
        for d, v in zip(denom, self.v):  # into buffers kept between steps: no allocation
            torch.add(v, self.tiny, out=d)
        torch._foreach_sqrt_(denom)
        torch._foreach_div_(denom, (1 - b2 ** self.t) ** 0.5)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.m, denom, step_size)

    def _moments(self, grads) -> None:
        """The first and second moments updated with this step's gradients."""
        b1, b2 = self.betas
        torch._foreach_lerp_(self.m, grads, 1 - b1)
        torch._foreach_mul_(self.v, b2)
        torch._foreach_addcmul_(self.v, grads, grads, 1 - b2)

    def _finish_on_device(self) -> None:
        """The rest of step() with the step count on the device (``steps_on_device`` > 0), so
        that a CUDA graph can replay it: the same operations, the bias corrections as
        one-element tensors. On the CPU it gives step()'s bits (a test checks). On CUDA it
        agrees to float rounding, not to the bit (tests/test_gpu.py: float64 within 1e-9 of
        torch.optim; in float32 the chaotic 10-layer runs then drift apart as CPU and GPU runs
        do)."""
        step_size = self.step_sizes.index_select(0, self.t_device)
        bias2_root = self.bias2_roots.index_select(0, self.t_device)
        for p, m, v, d in zip(self.params, self.m, self.v, self.denom):
            torch.add(v, self.tiny, out=d)
            d.sqrt_().div_(bias2_root).add_(self.eps)
            p.addcdiv_(m * step_size, d)  # p + (step_size · m) / d, as addcdiv's value
        self.t_device += 1


class SGD:
    """torch.optim.SGD's update with momentum (no dampening, no Nesterov), as its foreach
    implementation orders it; checked against torch.optim.SGD in the tests."""

    def __init__(self, params, lr: float, momentum: float = 0.0):
        self.params, self.lr, self.momentum = params, lr, momentum
        self.buf = None

    def step(self, grads) -> None:
        if self.momentum:
            if self.buf is None:
                self.buf = [g.clone() for g in grads]
            else:
                torch._foreach_mul_(self.buf, self.momentum)
                torch._foreach_add_(self.buf, grads)
            grads = self.buf
        torch._foreach_add_(self.params, grads, alpha=-self.lr)


def _make_optimizer(params, hp: Hyper, steps_on_device: int = 0):
    if hp.optimizer == "adam":
        return Adam(params, lr=hp.learning_rate, steps_on_device=steps_on_device)
    if hp.optimizer == "sgd":
        return SGD(params, lr=hp.learning_rate, momentum=hp.momentum)
    raise ValueError(f"unknown optimizer {hp.optimizer!r}; use 'adam' or 'sgd'")


def _pack(init: dict, L: int, dev) -> list[torch.Tensor]:
    """Parameters as few, large tensors: the hidden-to-hidden layers stacked as (L-1, runs, w, w)
    so that their gradient norms and the optimizer step are one operation each."""
    packed = [init["hidden1.weight"], init["hidden1.bias"]]
    if L > 1:
        packed += [torch.stack([init[f"hidden{i}.weight"] for i in range(2, L + 1)]),
                   torch.stack([init[f"hidden{i}.bias"] for i in range(2, L + 1)])]
    packed += [init["output.weight"], init["output.bias"]]
    return [t.to(dev).clone().contiguous() for t in packed]


def _flat(tensors: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One contiguous buffer holding copies of ``tensors``, and each tensor as a view into it:
    the optimizer updates the one buffer in a few operations (instead of a few per tensor,
    most of them tiny: the per-operation overhead was a tenth of an epoch at 5 seeds), while
    the forward and backward passes use the views. Elementwise, so the same bits."""
    sizes = [t.numel() for t in tensors]
    flat = torch.empty(sum(sizes), dtype=tensors[0].dtype, device=tensors[0].device)
    views = [v.view(t.shape) for v, t in zip(flat.split(sizes), tensors)]
    for v, t in zip(views, tensors):
        v.copy_(t)
    return flat, views


def _layers(packed: list[torch.Tensor], L: int) -> list[torch.Tensor]:
    """The packed parameters as views in ``forward``'s order [W_1, b_1, …, W_out, b_out]."""
    out = packed[:2]
    for i in range(L - 1):
        out += [packed[2][i], packed[3][i]]
    return out + packed[-2:]


def _unpack(packed: list[torch.Tensor], L: int) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous()
            for k, v in zip(model.param_keys(L), _layers(packed, L))}


@contextlib.contextmanager
def denormals_flushed(on: bool = True):
    """Subnormal floating-point results flushed to zero, and subnormal inputs read as zero, on
    this CPU thread inside the block (``torch.set_flush_denormal``); afterwards they are kept
    again, torch's default. With ``on=False`` the block runs as it is. The flag is the calling
    thread's: with more than one torch thread, the other threads keep subnormals (the same
    results, the speed-up of this thread only)."""
    if not on:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _norms(grads: list[torch.Tensor], z_grads: list[torch.Tensor], L: int):
    """‖∂L/∂z_l‖ (L, runs) and ‖∂L/∂W_l‖ (L, runs) per hidden layer."""
    z_norm = torch.stack([torch.linalg.vector_norm(d, dim=(1, 2)) for d in z_grads])
    w_norm = [torch.linalg.vector_norm(grads[0], dim=(1, 2))[None]]
    if L > 1:
        w_norm.append(torch.linalg.vector_norm(grads[2], dim=(2, 3)))
    return z_norm, torch.cat(w_norm)


def _output_products(g, h, w_out, grad_w_out):
    """The output layer's two backward products: ∂L/∂W_out = hᵀg, written into
    ``grad_w_out``, and ∂L/∂h = g W_outᵀ, returned (g = ∂L/∂output, (runs, n, out)). With one
    output unit (the study's) the first is a matrix-vector product and the second an outer
    product, which ``torch.bmm`` runs 7 and 10 times slower than the same arithmetic written
    as gᵀh (the transpose of the result, the same memory for one unit) and g · W_outᵀ (a
    broadcast product); the tests check both forms against the general products."""
    if g.shape[-1] != 1:
        torch.bmm(h.transpose(1, 2), g, out=grad_w_out)
        return torch.bmm(g, w_out.transpose(1, 2))
    torch.bmm(g.transpose(1, 2), h, out=grad_w_out.view(g.shape[0], 1, -1))
    return g * w_out.transpose(1, 2)


def _make_step(act, L: int, record: bool, grads: list[torch.Tensor],
               params: list[torch.Tensor], in_place: bool = True, flush_denormals: bool = False):
    """One epoch's loss, gradients and gradient norms for the packed parameters ``params``
    (updated in place by the optimizer between calls), as ``step(x, y)``. The backward pass is
    written out by hand: an MLP needs three batched products per layer, and each activation's
    backward is ``Activation.backward``. The gradients are written into ``grads`` (shaped like
    the packed parameters), returned. With ``in_place`` σ is computed in place over z where the
    activation allows it (``Activation.inplace``): the same bits. Each gradient norm is taken
    as soon as its tensor is computed, while it is in the cache, and each activation is let go
    after its last use, so that the next layer's tensors reuse its memory. With
    ``flush_denormals`` the step's arithmetic runs inside :func:`denormals_flushed`, except the
    gradient norms: a float32 gradient of 1e-20 has a subnormal square, which the norm keeps
    as it does without the flush."""
    fn, back = act.fn, act.backward
    inplace = act.inplace if in_place else None  # z overwritten by h
    layers = _layers(params, L)  # views, made once: the optimizer updates them in place
    w_t = [None] + [layers[2 * i].transpose(1, 2) for i in range(1, L)]  # W_l^T, l = 2..L
    g_w = [grads[0]] + [grads[2][i] for i in range(L - 1)]  # each hidden layer's, as views
    g_b = [grads[1]] + [grads[3][i] for i in range(L - 1)]

    def norm(t):  # ‖t‖ per run, subnormal squares kept inside the flushed step
        if flush_denormals:
            torch.set_flush_denormal(False)
        n = torch.linalg.vector_norm(t, dim=(1, 2))
        if flush_denormals:
            torch.set_flush_denormal(True)
        return n

    def step(x, y):
        with denormals_flushed(flush_denormals):
            return body(x, y)

    def body(x, y):
        out, zs, hs = model.forward(layers, x, fn, L, inplace)
        resid = out - y
        loss = resid.pow(2).mean(dim=(1, 2))
        g = resid * (2.0 / resid[0].numel())  # dL/d(output) of each run's own mean loss
        delta = back(_output_products(g, hs[-1], layers[-2], grads[-2]), zs[-1], hs[-1])
        torch.sum(g, dim=1, keepdim=True, out=grads[-1])
        z_norms, w_norms = [None] * L, [None] * L
        for i in range(L - 1, -1, -1):  # layer i+1, from the last hidden layer back
            if record:
                z_norms[i] = norm(delta)
            torch.bmm((hs[i - 1] if i > 0 else x).transpose(1, 2), delta, out=g_w[i])
            if record:
                w_norms[i] = norm(g_w[i])
            torch.sum(delta, dim=1, keepdim=True, out=g_b[i])
            if i > 0:
                delta = back(torch.bmm(delta, w_t[i]), zs[i - 1], hs[i - 1])
                hs[i - 1] = zs[i - 1] = None
        if not record:
            return loss, grads, None, None
        return (loss, grads, torch.stack(z_norms), torch.stack(w_norms))

    return step


def _make_autograd_step(act, L: int, record: bool, grads: list[torch.Tensor],
                        params: list[torch.Tensor]):
    """The same step with ``torch.autograd`` computing the gradients of the same stacked model
    (for the benchmark's comparison and as a cross-check of the hand-written pass), copied into
    ``grads``."""
    fn = act.fn
    into = grads

    def step(x, y):
        with torch.enable_grad():
            leaves = [p.detach().requires_grad_(True) for p in params]
            out, zs, _ = model.forward(_layers(leaves, L), x, fn, L)
            loss = (out - y).pow(2).mean(dim=(1, 2))
            wrt = leaves + (zs if record else [])
            all_grads = torch.autograd.grad(loss.sum(), wrt)
        grads = into
        for g, computed in zip(grads, all_grads[:len(leaves)]):
            g.copy_(computed)
        if not record:
            return loss.detach(), grads, None, None
        return (loss.detach(), grads, *_norms(grads, list(all_grads[len(leaves):]), L))

    return step


# Epochs run eagerly before an epoch is captured into a CUDA graph (torch.cuda.graph's
# documentation asks for warm-up iterations on a side stream; here they are real epochs). At
# least 1: SGD makes its momentum buffer in its first step, which a graph must not capture.
GRAPH_WARMUP = 3
assert GRAPH_WARMUP >= 1


class _GraphedEpoch:
    """Calls ``body`` (one epoch) eagerly for the first GRAPH_WARMUP epochs, on a side stream,
    then captures it once into a CUDA graph and replays that graph for every later epoch: one
    launch instead of about a hundred kernels an epoch (torch.profiler, bench/gpu.py), which is
    what bounds the stacked model on a GPU. After the warm-up, ``body`` must write only into
    tensors that exist before it (SGD's momentum buffer is made in the first, eager, epoch),
    and the numbers that change between epochs (Adam's step count) live on the device. With
    ``capture=False`` (the CPU) ``body`` runs eagerly every epoch: what the tests check on a
    machine without a GPU."""

    def __init__(self, body, capture: bool, device=None):
        self.body, self.capture, self.calls, self.graph = body, capture, 0, None
        # one side stream for every warm-up epoch, so that its cached memory is reused
        self.side = torch.cuda.Stream(device=device) if capture else None

    def __call__(self) -> None:
        self.calls += 1
        if not self.capture:
            self.body()
        elif self.graph is not None:
            self.graph.replay()
        elif self.calls <= GRAPH_WARMUP:
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                self.body()
            torch.cuda.current_stream().wait_stream(self.side)
        else:
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.body()
            self.graph.replay()


def train(
    x: torch.Tensor,
    y: torch.Tensor,
    seeds,
    activation: str,
    hp: Hyper,
    device: str = "cpu",
    log_every: int = 50,
    record: bool = True,
    grad_mode: str = "manual",
    trace: Callable[[int, dict, dict], None] | None = None,
    unit_every: int = 0,
    cuda_graph: bool | None = None,
    in_place: bool = True,
    flush_denormals: bool = True,
) -> Result:
    """Train ``len(seeds)`` runs as one stacked model.

    x, y: (n, 1) shared by all runs, or (runs, n, 1) per run (e.g. several targets).
    ``seeds[r]`` seeds the initial weights of run r. ``record=False`` skips the gradient norms
    (to measure what recording costs);
    ``grad_mode="autograd"`` takes the gradients from autograd instead of the hand-written
    pass. ``trace(epoch, grads, params)``, if given, is called after every optimizer step with
    the gradients used and the parameters after the step, per layer as in the weights files
    (for the tests). ``unit_every`` > 0 records every hidden unit's state (:func:`unit_states`)
    at the start of epoch 1 (the initial weights), every ``unit_every`` epochs after it, and
    after the last update: which units die and which come back during training.
    ``cuda_graph`` (default: on CUDA with the hand-written gradients, unless ``trace`` is
    given) replays each epoch after the first GRAPH_WARMUP from a CUDA graph
    (:class:`_GraphedEpoch`); ``True`` on the CPU runs the same epoch body without capture.
    ``in_place=False`` computes σ out of place also where the activation allows it in place
    (the same bits; for the benchmark's comparison). ``flush_denormals`` (on the CPU, with the
    hand-written gradients) runs each epoch's step and update inside
    :func:`denormals_flushed`: the same bits, without the slow path of subnormal arithmetic;
    ``False`` for the benchmark's comparison.
    """
    if grad_mode not in GRAD_MODES:
        raise ValueError(f"unknown grad_mode {grad_mode!r}; use one of {GRAD_MODES}")
    dev = resolve_device(device)
    if cuda_graph is None:
        cuda_graph = dev.type == "cuda" and trace is None and grad_mode == "manual"
    if cuda_graph and trace is not None:
        raise ValueError("trace reads every step on the host, which a CUDA graph's replay does "
                         "not allow: pass cuda_graph=False with trace")
    if dev.type == "cuda":
        _deterministic_cuda()
    dtype = getattr(torch, hp.dtype)
    act = activations.get(activation)
    runs, L = len(seeds), hp.hidden_layers
    x = torch.as_tensor(np.array(x), dtype=dtype, device=dev)
    y = torch.as_tensor(np.array(y), dtype=dtype, device=dev)
    if x.dim() == 2:
        x = x.expand(runs, *x.shape).contiguous()  # real copies: batched products would copy
    if y.dim() == 2:  # a stride-0 batch on every call
        y = y.expand(runs, *y.shape).contiguous()

    init = model.init_params(seeds, L, hp.width, hp.dtype, hp.init, hp.bias_init)
    flat_params, params = _flat(_pack(init, L, dev))
    flat_grads, grads = _flat([torch.zeros_like(p) for p in params])
    E = hp.epochs
    opt = _make_optimizer([flat_params], hp, steps_on_device=E if cuda_graph else 0)
    flush = flush_denormals and dev.type == "cpu" and grad_mode == "manual"
    step = (_make_step(act, L, record, grads, params, in_place, flush) if grad_mode == "manual"
            else _make_autograd_step(act, L, record, grads, params))

    def update():
        with denormals_flushed(flush):
            opt.step([flat_grads])  # grads are views of flat_grads

    # per epoch: the loss (row 0), ‖∂L/∂z_l‖ (rows 1..L) and ‖∂L/∂W_l‖ (rows L+1..2L)
    history = torch.full((E, 1 + 2 * L, runs), float("nan"), dtype=dtype, device=dev)
    loss_h, zg_h, wg_h = history[:, 0], history[:, 1:1 + L], history[:, 1 + L:]
    if cuda_graph:
        rows = 1 + 2 * L if record else 1
        slot = torch.empty((rows, runs), dtype=dtype, device=dev)  # the graph's output

        def body():
            loss, _, z_norm, w_norm = step(x, y)
            slot[0] = loss
            if record:
                slot[1:1 + L] = z_norm
                slot[1 + L:] = w_norm
            update()

        run_epoch = _GraphedEpoch(body, capture=dev.type == "cuda", device=dev)

    unit_epochs, states = [], []

    def read_units(epoch):  # one extra forward pass at each checkpoint
        unit_epochs.append(epoch)
        states.append(unit_states(model.forward(_layers(params, L), x, act.fn, L)[2]))

    t0 = time.perf_counter()
    log.info("training %d runs of %s on %s: %s", runs, activation, dev, hp)
    # the graph's streams are those of the device trained on (cuda:1 too), not the current one
    on_device = torch.cuda.device(dev) if dev.type == "cuda" else contextlib.nullcontext()
    with torch.no_grad(), on_device:
        for epoch in range(E):
            if unit_every and epoch % unit_every == 0:
                read_units(epoch + 1)
            if cuda_graph:
                run_epoch()
                history[epoch, :len(slot)] = slot
                loss = slot[0]
            else:
                loss, grads, z_norm, w_norm = step(x, y)
                loss_h[epoch] = loss
                if record:
                    zg_h[epoch] = z_norm
                    wg_h[epoch] = w_norm
                update()
            if trace is not None:
                trace(epoch + 1, *({k: v.clone() for k, v in _unpack(t, L).items()}
                                   for t in (grads, params)))
            if log_every and ((epoch + 1) % log_every == 0 or epoch == 0 or epoch + 1 == E):
                log.info("epoch %d/%d  mean loss %.6g  elapsed %.2f s", epoch + 1, E,
                         loss.nanmean().item(), time.perf_counter() - t0)
        out, _, hs = model.forward(_layers(params, L), x, act.fn, L)
        final_loss = (out - y).pow(2).mean(dim=(1, 2))
        if unit_every:
            unit_epochs.append(E + 1)
            states.append(unit_states(hs))
    seconds = time.perf_counter() - t0
    return Result(
        loss=np.ascontiguousarray(loss_h.cpu().numpy()),
        weight_grad=np.ascontiguousarray(wg_h.cpu().numpy()) if record else np.ones((E, L, runs)),
        preact_grad=np.ascontiguousarray(zg_h.cpu().numpy()) if record else np.ones((E, L, runs)),
        final_loss=final_loss.cpu().numpy(),
        init_params=init,
        final_params=_unpack(params, L),
        seconds=seconds,
        device=str(dev),
        unit_epochs=np.array(unit_epochs, dtype=np.int64),
        unit_states=(torch.stack(states).cpu().numpy() if states
                     else np.zeros((0, L, runs, hp.width), dtype=np.uint8)),
    )


def activation_cost(activation: str, shape, device: str = "cpu", repeats: int = 11,
                    calls: int = 5, dtype: str = "float32") -> list[float]:
    """Seconds per element of one forward and backward pass of the activation (σ(z), then
    grad · σ′(z) as training computes it) on a tensor of ``shape``, one figure per repeat, each
    the mean of ``calls`` calls after a warm-up: what the activation itself costs on this
    machine, measured inside the training job. σ is computed out of place for every
    activation, also where training computes it in place (``Activation.inplace``): the same
    work for each, so that the comparison is of the functions, not of a saved allocation."""
    dev = resolve_device(device)
    act = activations.get(activation)
    g = torch.Generator(device="cpu").manual_seed(0)
    z = torch.randn(*shape, generator=g, dtype=getattr(torch, dtype)).to(dev)
    grad = torch.ones_like(z)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with torch.no_grad():
        act.backward(grad, z, act.fn(z))  # warm-up: first-call costs are not the function's
        out = []
        for _ in range(repeats):
            sync()
            t = time.perf_counter()
            for _ in range(calls):
                act.backward(grad, z, act.fn(z))
            sync()
            out.append((time.perf_counter() - t) / calls / z.numel())
    return out
