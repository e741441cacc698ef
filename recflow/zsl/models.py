"""STL, ZSL_ME and ZSL_TE (Wu et al. 2020, §4), trained by alternating least squares.

- STL (Task 1 only): x_it ≈ v_i·w_t on the item–term matrix X.
- ZSL_ME (Task 1 + Task 2): also m_ij ≈ v_i·u_j on the co-consumption matrix M, with
  free context vectors u_j; v_i is shared by both tasks.
- ZSL_TE (Task 2 only): m_ij ≈ v_i·u_j with u_j = Σ_t b_jt w_t, the bag-of-words encoding
  of item j's text, so the word vectors learn from co-consumption alone.

Every task uses the weighted loss of ``solver.py`` (all implicit negatives at weight ω0,
1/√nnz row/column weights) plus λ times the squared norm of every factor. A query q is
encoded like an item's text, u_q = mean of its known terms' w_t, and items are scored by
v_i·u_q (dot) or by cosine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from recflow.progress import ProgressFn, ProgressTimer
from recflow.zsl.inputs import ZslInputs
from recflow.zsl.solver import Block, RowSolver, TextEncoderSolver, block_loss, transpose

METHODS = ("stl", "zsl_me", "zsl_te")
ROW_SOLVERS = ("cg", "exact")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class ZslConfig:
    """Hyperparameters (paper: dim 200, ω0 0.001, λ 4, 10 iterations).

    λ = 1 and ω0 = 0.01 here, not the paper's 4 and 0.001: with 1/√nnz weights of mean 1 a
    term seen in a handful of items carries far less data weight than λ = 4, and STL and
    ZSL_ME collapse to one direction (on ml_small the first principal direction explains
    100% of the item-score variance across 300 one-word queries, every query gets the same
    ranking). At λ = 1, ω0 = 0.01 that share is 11% (STL) and 17% (ZSL_ME), and validation
    NDCG@100 with the prior rises from 0.111 to 0.130 (STL), 0.112 to 0.128 (ZSL_ME).

    omega0 / text_omega0: weight of an implicit negative in M / X · text_task_weight: α of
    Task 1 in ZSL_ME · cg_iterations / cg_tol: ZSL_TE's word step (preconditioned CG from
    the previous W) · row_solver: "cg" (``row_cg_steps`` preconditioned CG steps per row
    from the previous factors, implicit's trick) or "exact" (one direct solve per row, the
    reference). With 5 word steps and 3 row steps per iteration (each from the last
    factors) the loss after 10 iterations on ml_small is at or below the exact solves'
    (ZSL_TE 16201.33 vs 16201.34, STL 12579.42 vs 12579.51, ZSL_ME 27330.94 vs 27331.15)
    and the validation NDCG@100 equal to 4 decimals · init_scale: std of the random initial factors · memory_elems: bound on one
    batch of exact per-row solves.
    """

    method: str = "zsl_te"
    dim: int = 64
    lam: float = 1.0
    omega0: float = 0.01
    text_omega0: float = 0.01
    text_task_weight: float = 1.0
    iterations: int = 10
    cg_iterations: int = 5
    cg_tol: float = 1e-4
    row_solver: str = "cg"
    row_cg_steps: int = 3
    init_scale: float = 0.1
    seed: int = 0
    dtype: str = "float32"
    memory_elems: int = 1 << 24

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.row_solver not in ROW_SOLVERS:
            raise ValueError(f"row_solver must be one of {ROW_SOLVERS}, got {self.row_solver!r}")
        if self.row_cg_steps < 1:
            raise ValueError(f"row_cg_steps must be ≥ 1, got {self.row_cg_steps}")
        if self.dim < 1 or self.iterations < 0:
            raise ValueError("dim must be ≥ 1 and iterations ≥ 0")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ZslModel:
    """A trained model: vectors on the item and term indices of its inputs.

    item_vectors: (n, d) v_i · word_vectors: (V, d) w_t · context_vectors: (n, d) u_j
    (ZSL_ME: free; ZSL_TE: B W; STL: None) · loss_history: objective after each iteration,
    the first entry at initialization.
    """

    config: ZslConfig
    item_vectors: np.ndarray
    word_vectors: np.ndarray
    context_vectors: np.ndarray | None
    loss_history: list[float]
    train_seconds: float = 0.0


@dataclass
class _State:
    v: torch.Tensor  # (n, d)
    w: torch.Tensor  # (V, d)
    u: torch.Tensor | None  # (n, d), ZSL_ME only


class Trainer:
    """Alternating least-squares solves for one method on fixed inputs.

    Separate from ``train`` so that the warm-start refresh can start from given vectors.
    """

    def __init__(
        self,
        inputs: ZslInputs,
        config: ZslConfig,
        device: torch.device,
        solver: Callable[..., RowSolver] = RowSolver,
    ) -> None:
        """``solver`` builds each row solver (``RowSolver``'s signature); pass
        ``recflow.zsl.sharded.sharded_solver()`` to split the rows over a process group."""
        self.inputs = inputs
        self.config = config
        self.device = device
        self.dtype = DTYPES[config.dtype]
        c = config
        n, n_terms = inputs.n_items, len(inputs.vocab)
        x = inputs.text_targets()
        x_t = transpose(x)
        r, cw = inputs.cooc_row_weight, inputs.cooc_col_weight
        kw = {
            "device": device,
            "dtype": self.dtype,
            "memory_elems": c.memory_elems,
            "cg_steps": c.row_cg_steps if c.row_solver == "cg" else 0,
        }
        if c.method == "stl":
            self.text_rw, self.text_cw = inputs.text_weights()
            self.v_solver = solver(
                [Block(x, self.text_cw, c.text_omega0)], self.text_rw, c.lam, **kw
            )
            self.w_solver = solver(
                [Block(x_t, self.text_rw, c.text_omega0)], self.text_cw, c.lam, **kw
            )
        elif c.method == "zsl_me":
            # each task keeps its own matrix's row weights: the text task weights item i by
            # 1/√(its term count), not by its co-consumption r_i (which would shrink popular
            # items' text toward 0 and rank unpopular items first)
            self.text_rw, self.text_cw = inputs.text_weights()
            a = c.text_task_weight
            self.v_solver = solver(
                [
                    Block(x, self.text_cw, c.text_omega0, a, row_weight=self.text_rw),
                    Block(inputs.cooc, cw, c.omega0, row_weight=r),
                ],
                np.ones(n),
                c.lam,
                **kw,
            )
            self.w_solver = solver(
                [Block(x_t, self.text_rw, c.text_omega0, a)], self.text_cw, c.lam, **kw
            )
            self.u_solver = solver([Block(transpose(inputs.cooc), r, c.omega0)], cw, c.lam, **kw)
        else:
            self.encoder = inputs.bag_of_words()
            self.v_solver = solver([Block(inputs.cooc, cw, c.omega0)], r, c.lam, **kw)
            self.w_step = TextEncoderSolver(
                inputs.cooc, self.encoder, r, cw, c.omega0, c.lam, self.dtype
            )
        self.n, self.n_terms = n, n_terms

    def initial_state(self) -> _State:
        """Seeded N(0, init_scale²) factors (drawn on CPU, so identical on every device)."""
        g = torch.Generator().manual_seed(self.config.seed)
        d, s = self.config.dim, self.config.init_scale

        def draw(rows: int) -> torch.Tensor:
            return (torch.randn(rows, d, generator=g, dtype=torch.float64) * s).to(
                self.device, self.dtype
            )

        v, w = draw(self.n), draw(self.n_terms)
        u = draw(self.n) if self.config.method == "zsl_me" else None
        return _State(v, w, u)

    def state_from(self, v: np.ndarray, w: np.ndarray, u: np.ndarray | None) -> _State:
        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, self.dtype)

        return _State(t(v), t(w), None if u is None else t(u))

    def contexts(self, s: _State) -> torch.Tensor | None:
        """u_j as used by the model: free (ZSL_ME), B W (ZSL_TE), none (STL)."""
        if self.config.method == "zsl_me":
            return s.u
        if self.config.method == "zsl_te":
            return self.encoder.matmul(s.w)
        return None

    def loss(self, s: _State) -> float:
        """The full objective: weighted task losses plus λ Σ ‖factor‖²."""
        c, inp = self.config, self.inputs
        reg = float((s.v**2).sum() + (s.w**2).sum())
        if c.method == "stl":
            data = block_loss(
                inp.text_targets(), self.text_rw, self.text_cw, c.text_omega0, s.v, s.w
            )
        elif c.method == "zsl_me":
            reg += float((s.u**2).sum())
            data = c.text_task_weight * block_loss(
                inp.text_targets(), self.text_rw, self.text_cw, c.text_omega0, s.v, s.w
            ) + block_loss(inp.cooc, inp.cooc_row_weight, inp.cooc_col_weight, c.omega0, s.v, s.u)
        else:
            u = self.contexts(s)
            data = block_loss(inp.cooc, inp.cooc_row_weight, inp.cooc_col_weight, c.omega0, s.v, u)
        return data + c.lam * reg

    def step(self, s: _State) -> _State:
        """One iteration: each factor block solved given the others (from its last value)."""
        c = self.config
        if c.method == "stl":
            v = self.v_solver.solve([s.w], x0=s.v)
            w = self.w_solver.solve([v], x0=s.w)
            return _State(v, w, None)
        if c.method == "zsl_me":
            v = self.v_solver.solve([s.w, s.u], x0=s.v)
            w = self.w_solver.solve([v], x0=s.w)
            u = self.u_solver.solve([v], x0=s.u)
            return _State(v, w, u)
        v = self.v_solver.solve([self.encoder.matmul(s.w)], x0=s.v)
        w, _, _ = self.w_step.solve(v, s.w, c.cg_iterations, c.cg_tol)
        return _State(v, w, None)

    def run(
        self, state: _State, iterations: int, on_progress: ProgressFn | None = None
    ) -> ZslModel:
        """``iterations`` steps from ``state``; the loss is recorded before and after each."""
        t0 = time.perf_counter()
        timer = ProgressTimer(iterations, on_progress)
        history = [self.loss(state)]
        for it in range(1, iterations + 1):
            state = self.step(state)
            history.append(self.loss(state))
            if not np.isfinite(history[-1]):
                raise FloatingPointError(
                    f"{self.config.method}: loss is {history[-1]} at iteration {it}"
                )
            timer.report(it, {"loss": history[-1]})
        ctx = self.contexts(state)
        return ZslModel(
            config=self.config,
            item_vectors=state.v.double().cpu().numpy(),
            word_vectors=state.w.double().cpu().numpy(),
            context_vectors=None if ctx is None else ctx.double().cpu().numpy(),
            loss_history=history,
            train_seconds=time.perf_counter() - t0,
        )


def train(
    inputs: ZslInputs,
    config: ZslConfig,
    device: torch.device | str = "cpu",
    on_progress: ProgressFn | None = None,
    solver: Callable[..., RowSolver] = RowSolver,
) -> ZslModel:
    """Train ``config.method`` from a seeded random start (``solver``: see ``Trainer``)."""
    trainer = Trainer(inputs, config, torch.device(device), solver)
    return trainer.run(trainer.initial_state(), config.iterations, on_progress)
