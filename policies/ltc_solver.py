"""The LTC cell's fused semi-implicit ODE solver, written for speed on small wirings.

The math is the reference library's (`ncps` `LTCCell._ode_solver`, the paper's Eq. 3); only its layout
differs. Synapses are listed as edges e = (src_e → dst_e), one per non-zero of the wiring, so a
19-neuron NCP does its work on 60 edges instead of a dense 19×19 grid. With v (B, N) the potentials,
one unfold is

    a_e        = sigmoid(σ_e · v[src_e] − σ_e μ_e)                       (B, E)
    [num | den] = drive + a @ W                                          (B, 2N)
    v          ← (num + C ⊙ v) / den

where W (E, 2N) = [onehot(dst)·w_e E_e | onehot(dst)·w_e] scatters each edge into its target, and
`drive` (B, 2N) = [g_l v_l + Σ_s s_s E_s | C + g_l + Σ_s s_s + ε] holds everything that is constant across
the unfolds of a step (leak and the sensory synapses, which depend on the input only); C = C_m·K/Δt.

Speed (bench/core.py; at this size every kernel costs ~1-2 µs of dispatch, so the count of kernels
is the cost): the sensory drive of a whole sequence is one batched matmul before the time loop; the loop
runs six kernels per unfold (gather, multiply-add, sigmoid, matmul, multiply-add, divide), in
TorchScript where available; training uses a hand-written backward (`FusedSolve`) that replays the loop
in reverse with seven kernels per unfold and forms the parameter gradients in a few large matmuls at
the end, instead of recording ~20 autograd nodes per unfold; inference without gradients caches the
edge tensors (`LTCCell.synapses`) and runs a whole step in one TorchScript call (`step_mapped`).
`FusedSolve` is checked by `torch.autograd.gradcheck` and against autograd through the dense reference
in tests/policies/test_ltc.py. Double backward is not supported.

Every function here is TorchScript-compatible and also runs as plain Python (the path used under
autograd and graph capture: ONNX/JIT tracing, torch.export); both compute the same kernels in order.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F

USE_TORCHSCRIPT = True
"""Run the loops through TorchScript when no gradient is recorded (tests switch it off to compare)."""


def synapse_tensors(
    w: torch.Tensor,
    erev: torch.Tensor,
    sigma: torch.Tensor,
    mu: torch.Tensor,
    flat_index: torch.Tensor,
    dst_onehot: torch.Tensor,
    softplus_w: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-edge tensors of one synapse population (internal or sensory) from the dense parameters.

    Args:
        w, erev, sigma, mu: (P, N) dense parameters, [source, target] (P = N or S).
        flat_index: (E,) int64 flat indices source·N + target of the wiring's synapses.
        dst_onehot: (E, N) one-hot of each edge's target neuron.
        softplus_w: apply softplus to w (the implicit positivity constraint) or use it raw.

    Returns:
        sigma_e (E,), neg_sigma_mu_e (E,) = −σ_e μ_e, and scatter (E, 2N) = [onehot·w E | onehot·w].
    """
    edges = torch.stack([w, erev, sigma, mu]).reshape(4, -1).index_select(1, flat_index)
    w_e = edges[0]
    if softplus_w:
        w_e = F.softplus(w_e)
    sigma_e = edges[2]
    neg_sigma_mu = -(sigma_e * edges[3])
    weights = torch.stack([w_e * edges[1], w_e], 1)  # (E, 2): numerator and denominator weight
    n_edges, n = dst_onehot.shape[0], dst_onehot.shape[1]
    scatter = (dst_onehot.unsqueeze(1) * weights.unsqueeze(2)).reshape(n_edges, 2 * n)
    return sigma_e, neg_sigma_mu, scatter


def sensory_drive(
    u: torch.Tensor,
    src: torch.Tensor,
    sigma: torch.Tensor,
    neg_sigma_mu: torch.Tensor,
    scatter: torch.Tensor,
    bias: torch.Tensor,
) -> torch.Tensor:
    """The per-step constant part [num | den] of the update: leak, capacitance and sensory synapses.

    Args:
        u: (R, S) mapped inputs (R rows: a batch, or all T·B steps of a sequence at once).
        src, sigma, neg_sigma_mu, scatter: the sensory edges (see `synapse_tensors`).
        bias: (2N,) or (R, 2N) = [g_l v_l | C + g_l + ε].

    Returns:
        (R, 2N).
    """
    a = torch.sigmoid(torch.addcmul(neg_sigma_mu, u.index_select(1, src), sigma))
    return torch.addmm(bias, a, scatter)


def unfold_step(
    v: torch.Tensor,
    drive: torch.Tensor,
    c: torch.Tensor,
    src: torch.Tensor,
    sigma: torch.Tensor,
    neg_sigma_mu: torch.Tensor,
    scatter: torch.Tensor,
    unfolds: int,
    units: int,
) -> torch.Tensor:
    """One time step: `unfolds` semi-implicit Euler unfolds of the recurrent synapses.

    Args:
        v: (B, N) potentials. drive: (B, 2N) or (2N,) from `sensory_drive`. c: (N,) or (B, N) C_m·K/Δt.
        src, sigma, neg_sigma_mu, scatter: the internal edges (see `synapse_tensors`).
        unfolds: K. units: N (an int, so an ONNX trace keeps it constant).

    Returns:
        (B, N) the next potentials.
    """
    for _ in range(unfolds):
        a = torch.sigmoid(torch.addcmul(neg_sigma_mu, v.index_select(1, src), sigma))
        num, den = torch.addmm(drive, a, scatter).split(units, 1)
        v = torch.addcmul(num, c, v) / den
    return v


def step_mapped(
    x: torch.Tensor,
    v: torch.Tensor,
    in_w: torch.Tensor,
    in_b: torch.Tensor,
    sensory_src: torch.Tensor,
    sensory_sigma: torch.Tensor,
    sensory_neg_sigma_mu: torch.Tensor,
    sensory_scatter: torch.Tensor,
    bias: torch.Tensor,
    c: torch.Tensor,
    src: torch.Tensor,
    sigma: torch.Tensor,
    neg_sigma_mu: torch.Tensor,
    scatter: torch.Tensor,
    out_w: torch.Tensor,
    out_b: torch.Tensor,
    motors: int,
    unfolds: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole step in one call (inference): input map, sensory drive, unfolds, output map.

    Args:
        x: (B, S) inputs. v: (B, N) potentials. in_w, in_b: (S,) input map (ones/zeros when absent).
        out_w, out_b: (M,) output map. motors: M. Others: see `sensory_drive` and `unfold_step`.

    Returns:
        y (B, M) and the next potentials (B, N).
    """
    u = torch.addcmul(in_b, x, in_w)
    drive = sensory_drive(u, sensory_src, sensory_sigma, sensory_neg_sigma_mu, sensory_scatter, bias)
    v = unfold_step(v, drive, c, src, sigma, neg_sigma_mu, scatter, unfolds, v.shape[1])
    return torch.addcmul(out_b, v.narrow(1, 0, motors), out_w), v


def solve_sequence(
    v: torch.Tensor,
    drive: torch.Tensor,
    c: torch.Tensor,
    src: torch.Tensor,
    sigma: torch.Tensor,
    neg_sigma_mu: torch.Tensor,
    scatter: torch.Tensor,
    unfolds: int,
) -> torch.Tensor:
    """T steps without saving anything for backward (inference).

    Args:
        v: (B, N) initial potentials. drive: (T, B, 2N). c: (T, B, N) or (T, 1, N).

    Returns:
        (T, B, N) the potentials after each step.
    """
    n = v.shape[1]
    outs: list[torch.Tensor] = []
    for t in range(drive.shape[0]):
        drive_t = drive.select(0, t)
        c_t = c.select(0, t)
        for _ in range(unfolds):
            a = torch.sigmoid(torch.addcmul(neg_sigma_mu, v.index_select(1, src), sigma))
            num, den = torch.addmm(drive_t, a, scatter).split(n, 1)
            v = torch.addcmul(num, c_t, v) / den
        outs.append(v)
    return torch.stack(outs, 0)


def solve_sequence_saving(
    v: torch.Tensor,
    drive: torch.Tensor,
    c: torch.Tensor,
    src: torch.Tensor,
    sigma: torch.Tensor,
    neg_sigma_mu: torch.Tensor,
    scatter: torch.Tensor,
    unfolds: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`solve_sequence` that keeps what the backward needs, written straight into three buffers.

    Returns:
        v_buf (T·K + 1, B, N) the potentials before each unfold and after the last,
        a_buf (T·K, B, E) the synapse activations, nd_buf (T·K, B, 2N) the [num | den] of each unfold.
    """
    steps = drive.shape[0]
    batch, n = v.shape[0], v.shape[1]
    total = steps * unfolds
    v_buf = torch.empty((total + 1, batch, n), dtype=v.dtype, device=v.device)
    a_buf = torch.empty((total, batch, src.shape[0]), dtype=v.dtype, device=v.device)
    nd_buf = torch.empty((total, batch, 2 * n), dtype=v.dtype, device=v.device)
    v_buf[0] = v
    v_views = v_buf.unbind(0)
    a_views = a_buf.unbind(0)
    nd_views = nd_buf.unbind(0)
    i = 0
    for t in range(steps):
        drive_t = drive.select(0, t)
        c_t = c.select(0, t)
        for _ in range(unfolds):
            a = torch.sigmoid(torch.addcmul(neg_sigma_mu, v.index_select(1, src), sigma), out=a_views[i])
            num, den = torch.addmm(drive_t, a, scatter, out=nd_views[i]).split(n, 1)
            i += 1
            v = torch.div(torch.addcmul(num, c_t, v), den, out=v_views[i])
    return v_buf, a_buf, nd_buf


def solve_sequence_backward(
    grad_vs: torch.Tensor,
    v_buf: torch.Tensor,
    a_buf: torch.Tensor,
    nd_buf: torch.Tensor,
    c: torch.Tensor,
    src_scatter_t: torch.Tensor,
    scatter_t_signed: torch.Tensor,
    unfolds: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reverse-mode pass of `solve_sequence_saving`.

    Per unfold (forward v' = (num + C v)/den): g_num = g/den, g_den = −g_num v', g_a = [g_num | g_den] Wᵀ,
    g_x = g_a a(1 − a), g_v = C g_num + g_x Sᵀ, with S (N, E) the σ-weighted one-hot of each edge's source.
    Parameter gradients are summed over all unfolds at the end in a few large matmuls.

    Args:
        grad_vs: (T, B, N) gradient w.r.t. the potentials after each step.
        v_buf, a_buf, nd_buf: from `solve_sequence_saving`. c: as given to it.
        src_scatter_t: (E, N) = onehot(src)·σ_e (Sᵀ).
        scatter_t_signed: (2N, E) = [W_numᵀ ; −W_denᵀ].

    Returns:
        g_v0 (B, N); g_xsum (T·K, B, E) the gradients w.r.t. x; g_nd (T·K, B, 2N) holding [g_num | −g_den];
        g_drive (T, B, 2N) also [g_num | −g_den] summed over each step's unfolds; g_c (T, B, N).
    """
    steps, batch, n = grad_vs.shape[0], grad_vs.shape[1], grad_vs.shape[2]
    total = steps * unfolds
    g_nd = torch.empty((total, batch, 2 * n), dtype=grad_vs.dtype, device=grad_vs.device)
    g_x = torch.empty_like(a_buf)
    g_num_views = g_nd.narrow(2, 0, n).unbind(0)
    g_den_views = g_nd.narrow(2, n, n).unbind(0)
    g_nd_views = g_nd.unbind(0)
    g_x_views = g_x.unbind(0)
    v_views = v_buf.unbind(0)
    a_views = a_buf.unbind(0)
    den_views = nd_buf.narrow(2, n, n).unbind(0)
    g = torch.zeros_like(grad_vs[0])
    i = total
    for t in range(steps - 1, -1, -1):
        g = g + grad_vs.select(0, t)
        c_t = c.select(0, t)
        for _ in range(unfolds):
            i -= 1
            g_num = torch.div(g, den_views[i], out=g_num_views[i])
            torch.mul(g_num, v_views[i + 1], out=g_den_views[i])  # −g_den
            a = a_views[i]
            g_xi = torch.mul(
                torch.mm(g_nd_views[i], scatter_t_signed),
                torch.addcmul(a, a, a, value=-1.0),
                out=g_x_views[i],
            )
            g = torch.addmm(g_num * c_t, g_xi, src_scatter_t)
    g_c = (g_nd.narrow(2, 0, n) * v_buf.narrow(0, 0, total)).view(steps, unfolds, batch, n).sum(1)
    g_drive = g_nd.view(steps, unfolds, batch, 2 * n).sum(1)
    return g, g_x, g_nd, g_drive, g_c


_COMPILED: dict[str, Any] = {}


def compiled(fn: Any) -> Any:
    """The TorchScript version of one of this module's functions, compiled on first use.

    Falls back to `fn` itself (with one warning) where TorchScript cannot compile it, e.g. when the
    package is installed without its .py sources.
    """
    if not USE_TORCHSCRIPT:
        return fn
    name = fn.__name__
    if name not in _COMPILED:
        try:
            with warnings.catch_warnings():
                # TorchScript is deprecated in favour of torch.compile, which needs a compiler toolchain
                # and long warm-ups; if a future torch drops it, the except below runs the loops eagerly.
                warnings.simplefilter("ignore", DeprecationWarning)
                _COMPILED[name] = torch.jit.script(fn)
        except Exception as err:  # noqa: BLE001 - any TorchScript failure means: run it eagerly
            warnings.warn(f"LTC solver runs eagerly (TorchScript failed on {name}: {err})", stacklevel=2)
            _COMPILED[name] = fn
    return _COMPILED[name]


def capturing() -> bool:
    """True while a graph is captured (JIT/ONNX tracing, torch.compile/export): plain ops only.

    The TorchScript ONNX exporter traces (is_tracing); the dynamo one compiles (is_compiling).
    """
    # torch.jit leaves is_tracing out of __all__ and unannotated (untyped_calls_exclude misses it so).
    return torch.jit.is_tracing() or torch.compiler.is_compiling()  # type: ignore[attr-defined,no-untyped-call]


def plain_path() -> bool:
    """True where the eager functions must be used: under autograd recording or graph capture."""
    return torch.is_grad_enabled() or capturing()


class FusedSolve(torch.autograd.Function):
    """`solve_sequence` with a hand-written backward (see the module docstring).

    Inputs: v0 (B, N), drive (T, B, 2N), c (T, B, N) or (T, 1, N), sigma (E,), neg_sigma_mu (E,),
    scatter (E, 2N) (all differentiable), src (E,) int64, src_onehot (E, N), unfolds. Output: (T, B, N).
    """

    @staticmethod
    def forward(
        ctx: Any,
        v0: torch.Tensor,
        drive: torch.Tensor,
        c: torch.Tensor,
        sigma: torch.Tensor,
        neg_sigma_mu: torch.Tensor,
        scatter: torch.Tensor,
        src: torch.Tensor,
        src_onehot: torch.Tensor,
        unfolds: int,
    ) -> torch.Tensor:
        v_buf, a_buf, nd_buf = compiled(solve_sequence_saving)(
            v0, drive, c, src, sigma, neg_sigma_mu, scatter, unfolds
        )
        ctx.save_for_backward(v_buf, a_buf, nd_buf, c, sigma, scatter, src, src_onehot)
        ctx.unfolds = unfolds
        steps = drive.shape[0]
        # The state after each step is every K-th entry of v_buf; copied so callers own their output.
        # Typed local: compiled() gives Any (the TorchScript function or the eager one).
        states: torch.Tensor = (
            v_buf.narrow(0, 1, steps * unfolds).unflatten(0, (steps, unfolds)).select(1, unfolds - 1).clone()
        )
        return states

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_vs: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        v_buf, a_buf, nd_buf, c, sigma, scatter, src, src_onehot = ctx.saved_tensors
        grads = _backward(grad_vs, v_buf, a_buf, nd_buf, c, sigma, scatter, src, src_onehot, ctx.unfolds)
        return (*grads, None, None, None)


def _backward(
    grad_vs: torch.Tensor,
    v_buf: torch.Tensor,
    a_buf: torch.Tensor,
    nd_buf: torch.Tensor,
    c: torch.Tensor,
    sigma: torch.Tensor,
    scatter: torch.Tensor,
    src: torch.Tensor,
    src_onehot: torch.Tensor,
    unfolds: int,
) -> tuple[torch.Tensor, ...]:
    """Gradients w.r.t. (v0, drive, c, sigma, neg_sigma_mu, scatter) of `FusedSolve`."""
    n = v_buf.shape[2]
    scatter_t_signed = torch.cat([scatter[:, :n], -scatter[:, n:]], 1).t().contiguous()
    src_scatter_t = src_onehot * sigma.unsqueeze(1)
    g_v0, g_x, g_nd, g_drive, g_c = compiled(solve_sequence_backward)(
        grad_vs.contiguous(), v_buf, a_buf, nd_buf, c, src_scatter_t, scatter_t_signed, unfolds
    )
    total, batch, edges = a_buf.shape
    rows = total * batch  # explicit: a wiring without internal synapses has E = 0
    g_x_flat = g_x.view(rows, edges)
    g_scatter = torch.mm(a_buf.view(rows, edges).t(), g_nd.view(rows, 2 * n))
    g_scatter = torch.cat([g_scatter[:, :n], -g_scatter[:, n:]], 1)
    g_drive = torch.cat([g_drive[..., :n], -g_drive[..., n:]], -1)
    v_src = v_buf.narrow(0, 0, total).reshape(rows, n).index_select(1, src)  # 2-D: the fast gather
    g_sigma = (g_x_flat * v_src).sum(0)
    g_neg_sigma_mu = g_x_flat.sum(0)
    if c.shape[1] == 1 and g_c.shape[1] != 1:
        g_c = g_c.sum(1, keepdim=True)
    return g_v0, g_drive, g_c, g_sigma, g_neg_sigma_mu, g_scatter
