"""The one training loop every torch model in recflow goes through.

It reads top to bottom: batches → forward + loss → backward → step → report → checkpoint.
Methods differ only in the model they pass and which of its parameters require grad
(e.g. PeterRec trains only patches, norms and the head), never in a copy of this loop.

Reproducibility: each epoch reseeds torch's global RNG (dropout) and hands the batch
function a generator seeded by (seed, epoch), so a run resumed from the checkpoint of
epoch e continues exactly as the uninterrupted run would have.

Model selection (``TrainConfig.select_by``): after every epoch ``evaluate`` scores the
model on held-out data; the loop keeps the weights of the best epoch by that number,
stops after ``patience`` epochs without improvement, and hands back the best weights.
Every model of a comparison then gets the epoch count that suits it, chosen on
validation data, instead of one fixed count that favours some models over others.

Checkpoints (``checkpoint_dir``): after every epoch a folder ``epoch-<n>/`` with
``model.pt`` and ``optim.pt`` (state dicts, loaded with ``weights_only=True``),
``best_model.pt`` when selecting, and ``meta.json`` (epoch, history, best epoch), written
as a temporary folder renamed into place, so a crash mid-write leaves the previous epoch
whole. The newest two are kept: a resume that finds the newest unreadable (a corrupt
file) says so in the log and ``TrainResult.checkpoint_notes``, sets it aside as
``corrupt-epoch-<n>`` and resumes from the one before, or from scratch.

Data parallel, under ``torchrun`` (``python -m torch.distributed.run --nproc_per_node=N
script.py``, whose script calls ``init_distributed()`` before ``train``): when the
process belongs to a process group of N > 1, the loop wraps the model and loss in
``torch.nn.parallel.DistributedDataParallel`` (gloo on CPU, NCCL with one GPU per
process), which starts every process from rank 0's weights and all-reduces the gradients
during ``backward``. Every process draws the same global batches (the batch generator is
seeded by (seed, epoch), so the draw is the sampler, as ``DistributedSampler`` would be)
and trains on its rows ``rank, rank + N, ...`` (``shard_batch``); its loss is scaled by
N·n_r/n so that DDP's mean over processes is Σ_r (n_r/n)·∇L_r, the whole batch's
gradient for a loss that is a mean over rows (classification, BCE). N processes thus
follow the one-process run up to float summation order (dropout aside); for a loss
averaged over something else (pretraining: non-PAD positions; MEM: each entity's rows)
the weights by rows make the gradient close to, not equal to, the one-process one.
Frozen parameters (``requires_grad=False``: FineLast, FineCLS, PeterRec) are outside
DDP's reduction; DDP runs with ``find_unused_parameters=True`` because a trainable
parameter may take no part in the loss: TEM fine-tuned with its MEM unfrozen never uses
MEM's source tower (every other method and MKT stage also runs without it). A parameter
no process used keeps ``grad=None``, as in one process. Only rank 0 reports progress and
writes checkpoints. With one process there is no wrapper. A batch smaller than N leaves
some process no rows: it runs one row with weight 0, so that every process joins each
all-reduce.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from recflow import seeding
from recflow.device import resolve_device
from recflow.progress import ProgressFn
from recflow.store import load_state_dict, read_json, save_state_dict, write_json

Batch = Any
LossFn = Callable[[nn.Module, Batch], torch.Tensor]
BatchFn = Callable[[int, torch.Generator], Iterable[Batch]]
EvalFn = Callable[[nn.Module], Mapping[str, float]]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every training asset."""

    epochs: int = 5
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 5.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bfloat16 autocast, on CUDA only
    log_every: int = 50  # steps between progress reports
    select_by: str | None = None  # a key of ``evaluate``'s output: keep that metric's best epoch
    select_mode: str = "max"  # "max" (AUC, accuracy) or "min" (loss)
    patience: int | None = None  # with ``select_by``: stop after this many epochs without gain

    def __post_init__(self) -> None:
        if self.select_mode not in ("max", "min"):
            raise ValueError(f"select_mode must be 'max' or 'min', got {self.select_mode!r}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if self.patience is not None and self.select_by is None:
            raise ValueError("patience needs select_by (the metric that decides improvement)")


@dataclass
class TrainResult:
    """What a finished run reports (the asset layer turns it into metadata)."""

    history: list[dict[str, float]] = field(default_factory=list)
    trained_params: int = 0
    total_params: int = 0
    elapsed_s: float = 0.0
    samples: int = 0
    device: str = "cpu"
    resumed_from_epoch: int | None = None
    best_epoch: int | None = None  # with ``select_by``: the epoch whose weights were kept
    best_value: float | None = None
    stopped_early: bool = False
    # unreadable checkpoints skipped on resume, and what training did instead (also logged
    # as warnings of the "recflow.train" logger)
    checkpoint_notes: list[str] = field(default_factory=list)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.elapsed_s if self.elapsed_s > 0 else 0.0


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(parameters that require grad, all parameters)."""
    total = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trained, total


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move every tensor inside a (nested) tuple/list/dict batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def batch_size_of(batch: Batch) -> int:
    """Number of samples in a batch: the leading dimension of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    values = batch.values() if isinstance(batch, Mapping) else batch
    for v in values:
        n = batch_size_of(v)
        if n:
            return n
    return 0


def init_distributed(backend: str | None = None) -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes in the environment.

    Returns (rank, world size); (0, 1) when not launched by torchrun. Backend: NCCL with
    one GPU per process (``LOCAL_RANK``) where CUDA is present, else gloo on CPU.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend or ("nccl" if cuda else "gloo"))
    return dist.get_rank(), dist.get_world_size()


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of the current process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


SHARED_KEYS = frozenset({"negatives"})  # batch entries every process uses whole


def shard_batch(batch: Batch, rank: int, world: int) -> Batch:
    """This process's share of a batch: rows ``rank, rank + world, ...`` of every tensor,
    except entries under ``SHARED_KEYS`` (sampled-softmax negatives serve the whole batch)."""
    if isinstance(batch, torch.Tensor):
        return batch[rank::world]
    if isinstance(batch, Mapping):
        return {k: v if k in SHARED_KEYS else shard_batch(v, rank, world) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(shard_batch(v, rank, world) for v in batch)
    return batch


class _Loss(nn.Module):
    """``loss_fn(model, batch)`` as a module, so that DDP sees the whole loss computation
    as its forward (loss functions may call submodules rather than ``model.forward``)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.loss_fn(self.model, batch)


def _data_parallel(model: nn.Module, loss_fn: LossFn, device: torch.device) -> nn.Module:
    """The loss of ``model`` under DistributedDataParallel (rank 0's weights broadcast to
    every process now, gradients all-reduced in ``backward``)."""
    return nn.parallel.DistributedDataParallel(
        _Loss(model, loss_fn),
        device_ids=[device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else None,
        find_unused_parameters=True,
    )


CHECKPOINT_PREFIX = "epoch-"
KEEP_CHECKPOINTS = 2  # the newest and the one before it, to fall back on if it is corrupt
log = logging.getLogger(__name__)


def _epoch_dirs(checkpoint_dir: Path) -> list[Path]:
    """Complete epoch checkpoints, newest first (temp folders are not matched)."""
    found = [
        p
        for p in checkpoint_dir.glob(f"{CHECKPOINT_PREFIX}*")
        if p.is_dir() and p.name[len(CHECKPOINT_PREFIX) :].isdigit()
    ]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]), reverse=True)


def _load_checkpoint(
    checkpoint_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, Any] | None, list[str]]:
    """Load the newest readable epoch checkpoint into ``model`` and ``optimizer``.

    Returns its metadata (None: start from scratch) and one note per checkpoint that
    could not be read; an unreadable one is renamed ``corrupt-epoch-*`` (kept for a
    look, never read again) and the one before it is tried.
    """
    notes: list[str] = []
    initial_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    initial_optim = optimizer.state_dict()
    for folder in _epoch_dirs(checkpoint_dir):
        try:
            meta = read_json(folder / "meta.json")
            model.load_state_dict(load_state_dict(folder / "model.pt"))
            optimizer.load_state_dict(
                torch.load(folder / "optim.pt", map_location="cpu", weights_only=True)
            )
            if meta.get("best_epoch") is not None:
                meta["best_state"] = load_state_dict(folder / "best_model.pt")
            return meta, notes
        except Exception as exc:  # any unreadable file: fall back, said in the log
            model.load_state_dict(initial_model)
            optimizer.load_state_dict(initial_optim)
            notes.append(f"checkpoint {folder} is unreadable ({type(exc).__name__}: {exc})")
            folder.rename(folder.with_name(f"corrupt-{folder.name}"))
    return None, notes


def _link(src_dir: Path, dst_dir: Path, name: str) -> bool:
    """Hard-link an unchanged file into the new checkpoint; False when it cannot be."""
    try:
        os.link(src_dir / name, dst_dir / name)
    except OSError:  # gone (another run's cleanup) or a filesystem without links
        return False
    return True


def _save_checkpoint(
    checkpoint_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    history: list[dict[str, float]],
    config: TrainConfig,
    best: _Best,
) -> None:
    """Write ``epoch-<n>/`` whole or not at all (a temp folder renamed into place), then
    drop all but the newest ``KEEP_CHECKPOINTS``."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    previous = _epoch_dirs(checkpoint_dir)
    final = checkpoint_dir / f"{CHECKPOINT_PREFIX}{epoch:06d}"
    tmp = checkpoint_dir / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        save_state_dict(model.state_dict(), tmp / "model.pt")
        torch.save(optimizer.state_dict(), tmp / "optim.pt")
        if best.state is not None and not (
            best.improved_at != epoch and previous and _link(previous[0], tmp, "best_model.pt")
        ):
            save_state_dict(best.state, tmp / "best_model.pt")
        write_json(
            {
                "epoch": epoch,
                "history": history,
                "config": asdict(config),
                "best_epoch": best.epoch,
                "best_value": best.value,
            },
            tmp / "meta.json",
        )
        try:
            os.rename(tmp, final)
        except OSError as exc:
            # another run with the same checkpoint folder (same data and config, hence the
            # same epoch) got there first: its folder is as good as ours
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in _epoch_dirs(checkpoint_dir)[KEEP_CHECKPOINTS:]:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class _Best:
    """The best epoch so far by ``select_by`` and a CPU copy of its weights."""

    mode: str
    epoch: int | None = None
    value: float | None = None
    state: dict[str, torch.Tensor] | None = None
    improved_at: int | None = None  # the epoch of the last improvement (to save once)

    def update(self, epoch: int, value: float, model: nn.Module) -> None:
        if value != value:  # NaN never wins
            return
        better = self.value is None or (
            value > self.value if self.mode == "max" else value < self.value
        )
        if better:
            self.epoch, self.value, self.improved_at = epoch, value, epoch
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def train(
    model: nn.Module,
    loss_fn: LossFn,
    batches: BatchFn,
    config: TrainConfig,
    *,
    checkpoint_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
    evaluate: EvalFn | None = None,
) -> TrainResult:
    """Train the parameters of ``model`` that require grad; return the run's record.

    ``batches(epoch, generator)`` yields the epoch's batches (CPU tensors; moved here).
    ``loss_fn(model, batch)`` returns a scalar loss. ``evaluate(model)``, if given, runs
    after each epoch in eval mode and its numbers join the epoch's history row. With
    ``checkpoint_dir`` the run resumes after the last completed epoch found there.

    Launched by ``torchrun --nproc_per_node=N`` in a script that calls
    ``init_distributed()`` first, every process runs this same call and the loop trains
    under DistributedDataParallel, each process on its share of every batch (see the
    module docstring); alone, it trains the model as it is.
    """
    device = resolve_device(config.device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameter that requires grad: nothing to train")
    if config.select_by is not None and evaluate is None:
        raise ValueError(f"select_by={config.select_by!r} needs an evaluate function")
    # fused: one kernel over every parameter instead of a Python loop of small ops per
    # tensor (MKT's MEM has 59 small ones: its step was 17% faster, measured on CPU)
    optimizer = torch.optim.AdamW(
        params, lr=config.lr, weight_decay=config.weight_decay, fused=True
    )
    trained, total = count_parameters(model)
    result = TrainResult(trained_params=trained, total_params=total, device=str(device))

    start_epoch = 1
    best = _Best(config.select_mode)
    if checkpoint_dir is not None:
        meta, notes = _load_checkpoint(Path(checkpoint_dir), model, optimizer)
        if meta is not None:
            start_epoch = int(meta["epoch"]) + 1
            result.history = list(meta["history"])
            result.resumed_from_epoch = int(meta["epoch"])
            if meta.get("best_epoch") is not None:
                best.epoch, best.value = int(meta["best_epoch"]), float(meta["best_value"])
                best.state = meta["best_state"]
        if notes:
            where = (
                f"resuming after epoch {result.resumed_from_epoch}"
                if meta is not None
                else "training from scratch"
            )
            result.checkpoint_notes = [*notes, where]
            for note in result.checkpoint_notes:
                log.warning(note)

    rank, world = distributed_world()
    parallel = _data_parallel(model, loss_fn, device) if world > 1 else None
    if rank != 0:
        on_progress = None

    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if config.amp and device.type == "cuda"
        else nullcontext()
    )
    started = time.perf_counter()
    step = 0
    for epoch in range(start_epoch, config.epochs + 1):
        if _patience_spent(config, best, epoch - 1):
            result.stopped_early = True
            break
        seeding.seed_torch(config.seed, "dropout", epoch)
        generator = seeding.generator(config.seed, "batches", epoch)
        model.train()
        loss_sum, n_batches, epoch_samples = 0.0, 0, 0
        shard_loss_sum = 0.0  # this process's own losses, for live progress
        for batch in batches(epoch, generator):
            batch_samples = batch_size_of(batch)
            optimizer.zero_grad(set_to_none=True)
            if parallel is None:
                share = 1.0
                with autocast:
                    loss = loss_fn(model, to_device(batch, device))
                loss.backward()
            else:
                if batch_samples == 0:
                    raise ValueError("distributed training needs batches of tensors to split")
                mine = shard_batch(batch, rank, world)
                share = batch_size_of(mine) / batch_samples
                if share == 0:  # a batch smaller than world: take part with zero weight
                    mine = shard_batch(batch, 0, batch_samples)
                with autocast:
                    loss = parallel(to_device(mine, device))
                # DDP averages over processes: world · share makes that Σ_r share_r ∇L_r
                (loss * (world * share)).backward()
            shard_loss = float(loss.detach()) if share > 0 else 0.0
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            loss_sum += shard_loss * share
            shard_loss_sum += shard_loss
            n_batches += 1
            epoch_samples += batch_samples
            step += 1
            if on_progress is not None and step % config.log_every == 0:
                running = shard_loss_sum / n_batches
                on_progress(epoch, config.epochs, {"step": step, "loss": running})
        if n_batches == 0:
            raise ValueError(f"epoch {epoch}: the batch function yielded no batch")
        if world > 1:
            total = torch.tensor([loss_sum], dtype=torch.float64, device=device)
            dist.all_reduce(total)  # Σ_r share_r · loss_r = the whole batches' loss
            loss_sum = float(total.item())
        row: dict[str, float] = {"epoch": epoch, "loss": loss_sum / n_batches}
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                row.update({k: float(v) for k, v in evaluate(model).items()})
            if config.select_by is not None:
                if config.select_by not in row:
                    raise KeyError(
                        f"select_by={config.select_by!r} is not among the evaluated "
                        f"numbers {sorted(row)}"
                    )
                best.update(epoch, row[config.select_by], model)
        result.history.append(row)
        result.samples += epoch_samples
        if checkpoint_dir is not None and rank == 0:
            _save_checkpoint(
                Path(checkpoint_dir), model, optimizer, epoch, result.history, config, best
            )
        if world > 1:
            dist.barrier()  # no process starts the next epoch before the checkpoint is written
        if on_progress is not None:
            elapsed = time.perf_counter() - started
            done = epoch - start_epoch + 1
            eta = elapsed / done * (config.epochs - epoch)
            on_progress(epoch, config.epochs, {**row, "elapsed_s": elapsed, "eta_s": eta})
    result.elapsed_s = time.perf_counter() - started
    if config.select_by is not None and best.state is not None:
        model.load_state_dict(best.state)  # back to the best epoch's weights
        result.best_epoch, result.best_value = best.epoch, best.value
    model.eval()
    return result


def _patience_spent(config: TrainConfig, best: _Best, last_epoch: int) -> bool:
    """True when ``patience`` epochs have passed since the best one (early stopping)."""
    if config.patience is None or best.epoch is None:
        return False
    return last_epoch - best.epoch >= config.patience
