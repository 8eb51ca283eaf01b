"""The Trainer: one optimiser step (`step`), validation (`evaluate`) and the whole run (`fit`).

Every registry policy trains through the same path: windows (B, T, H, W, 3) uint8 -> the policy's
perception on all B·T frames -> its head over T steps from the zero state -> curvature (B, T) in 1/m ->
the curve-weighted squared error (loss.py) -> Adam with two parameter groups (the convolutions at
`lr_perception`, everything else at `lr_head`), global-norm clipping, the schedule.

Under DDP the model is wrapped in DistributedDataParallel; each rank holds batch / world_size windows
of the global batch and the loss is normalised by the global weight sum, so the averaged gradient is the
one-process gradient of the whole batch. Only rank 0 writes checkpoints and metrics.

A non-finite loss or gradient norm stops the run (`NonFiniteLossError`) before the update is applied and
without writing any checkpoint, so the last good `last.pt` (and `best.pt`) stay as they were.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from common.interrupts import check
from common.strict_config import save_config, to_dict
from drive.training.data import AugmentedWindows, eval_loader, steps_per_epoch, train_loader
from drive.training.distributed import DistContext, all_reduce_sum, default_threads, init_distributed
from drive.training.loss import curve_weights, weighted_error_sums, weighted_squared_error
from drive.training.model import SequenceModel
from drive.training.precision import resolve_amp_bf16
from drive.training.schedule import lr_factor
from drive.training.state import check_resumable, rng_state, set_rng_state
from drive.training.train_config import TrainConfig
from drive.training.train_metrics import CURVES_FILE, MetricsLog, plot_loss_curves, read_metrics
from policies.checkpoint import load_weights, read_checkpoint, save_checkpoint
from policies.driving_policy import DrivingPolicy
from policies.registry import build_policy

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient norm became NaN or infinite; the message names the step and checkpoint."""


class Trainer:
    """Trains one policy on window datasets.

    Args:
        config: the resolved training config.
        train_set: items (frames (T, H, W, 3) uint8, labels (T,) float32 1/m), keyed by (epoch, index)
            (drive.training.data.AugmentedWindows).
        val_set: the validation windows (keyed by index), or None.
        out_dir: the run directory (checkpoints/, metrics.jsonl, loss_curves.png, config.yaml); None
            writes nothing (tests, benchmarks).
        ctx: the process/device context; None joins torchrun's group if launched under it, else one process.
        policy: a ready policy; None builds `config.policy` from the registry (seeded by `config.seed`).
        data_info: what the data was (episodes, windows), stored in checkpoints.
    """

    def __init__(
        self,
        config: TrainConfig,
        train_set: AugmentedWindows,
        val_set: AugmentedWindows | None = None,
        out_dir: str | Path | None = None,
        *,
        ctx: DistContext | None = None,
        policy: DrivingPolicy | None = None,
        data_info: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.ctx = ctx if ctx is not None else init_distributed(config.device)
        self.device = self.ctx.device
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.data_info = data_info or {}
        world = self.ctx.world_size
        if config.batch % world:
            raise ValueError(f"batch {config.batch} (the global batch) must divide by the {world} DDP ranks")
        self.batch_per_rank = config.batch // world
        torch.set_num_threads(config.threads or default_threads(self.ctx))
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        torch.manual_seed(config.seed)  # the same initial weights on every rank and every run
        self.policy = policy if policy is not None else build_policy(config.policy)
        if config.init_checkpoint:
            payload = read_checkpoint(config.init_checkpoint)
            load_weights(self.policy, payload["state_dict"], source=config.init_checkpoint)
        self.policy.to(self.device)
        self.amp_bf16 = resolve_amp_bf16(config.amp_bf16, self.device)  # `auto` -> on where native
        self.sequence_model = SequenceModel(self.policy, self.amp_bf16)
        self.model: nn.Module = self.sequence_model
        if self.ctx.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            if self.device.type == "cuda":  # batch-norm statistics over the global batch (CUDA only in torch)
                nn.SyncBatchNorm.convert_sync_batchnorm(self.sequence_model)
            self.model = DistributedDataParallel(self.sequence_model, device_ids=ids)

        optim = config.optim
        self.optimizer = torch.optim.Adam(
            self.policy.parameter_groups(optim.lr_head, optim.lr_perception),
            betas=optim.betas,
            weight_decay=optim.weight_decay,
        )
        self.train_set, self.val_set = train_set, val_set
        if config.calibrate_input_map and not config.init_checkpoint:
            self._calibrate_input_map()
        pin = self.device.type == "cuda"
        workers = config.data.workers
        self.loader, self.sampler = train_loader(
            train_set, self.batch_per_rank, self.ctx.rank, world, config.seed, workers, pin
        )
        self.val_loader = (
            eval_loader(val_set, self.batch_per_rank, self.ctx.rank, world, workers, pin)
            if val_set is not None and len(val_set) > 0
            else None
        )
        self.steps_per_epoch = steps_per_epoch(len(train_set), config.batch)
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch {config.batch} is larger than the {len(train_set)} training windows")
        full = config.epochs * self.steps_per_epoch
        self.total_steps = min(full, config.max_steps) if config.max_steps else full
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, optim, self.total_steps)
        )
        self.step_count = 0
        self.best_val_loss = math.inf
        self.last_val: dict[str, float] = {}
        self.last_checkpoint: Path | None = None
        self.metrics = MetricsLog(Path("."), enabled=False)
        self._resumed_from: int | None = None

    # -- one step ---------------------------------------------------------------------------------------

    def backward(self, frames_u8: torch.Tensor, labels_1pm: torch.Tensor) -> torch.Tensor:
        """Forward and backward of one batch (gradients accumulate in .grad, synced over ranks by DDP).

        Args:
            frames_u8: (b, T, H, W, 3) uint8, this rank's windows.
            labels_1pm: (b, T) float32 expert curvature, 1/m (NaN = missing).

        Returns:
            The loss of the global batch (detached scalar; the same on every rank).
        """
        frames_u8 = frames_u8.to(self.device, non_blocking=True)
        labels_1pm = labels_1pm.to(self.device, non_blocking=True)
        scale, alpha = self.policy.curvature_scale_1pm, self.config.loss.alpha
        weight_total = all_reduce_sum(curve_weights(labels_1pm, scale, alpha).sum(), self.ctx)
        pred = self.model(frames_u8)
        loss = weighted_squared_error(pred, labels_1pm, scale, alpha, weight_total / self.ctx.world_size)
        loss.backward()
        return all_reduce_sum(loss.detach().clone(), self.ctx) / self.ctx.world_size

    def _calibrate_input_map(self, windows: int = 8) -> None:
        """`DrivingPolicy.calibrate_input_map` on the first `windows` training windows (dataset order,
        epoch 0: the same frames on every rank, so DDP replicas stay identical)."""
        count = min(windows, len(self.train_set))
        frames = torch.cat([self.train_set[(0, i)][0] for i in range(count)]).to(self.device)
        self.policy.calibrate_input_map(frames)

    def step(self, frames_u8: torch.Tensor, labels_1pm: torch.Tensor) -> dict[str, float]:
        """One optimiser step on one batch; returns loss, grad_norm (before clipping), learning rates.

        Raises:
            NonFiniteLossError: the loss or gradient norm is NaN/inf (nothing is updated or saved).
        """
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.backward(frames_u8, labels_1pm)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.optim.clip_norm)
        loss_value, norm_value = float(loss), float(grad_norm)
        if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            kept = self.last_checkpoint or "none saved yet"
            self.metrics.write(
                "event", self.step_count, event="non_finite", loss=loss_value, grad_norm=norm_value
            )
            raise NonFiniteLossError(
                f"non-finite training loss ({loss_value}) or gradient norm ({norm_value}) at step "
                f"{self.step_count + 1}; the run stopped before applying it. "
                f"Last good checkpoint kept: {kept}. "
                "Lower optim.lr_head / optim.lr_perception or check the recordings' labels."
            )
        lrs = {f"lr_{g['name']}": g["lr"] for g in self.optimizer.param_groups}
        self.optimizer.step()
        constrain = getattr(self.policy.head, "apply_weight_constraints", None)
        if callable(constrain):  # heads that keep parameters in range by clipping (LTC without softplus)
            constrain()
        self.scheduler.step()
        self.step_count += 1
        return {"loss": loss_value, "grad_norm": norm_value, **lrs}

    # -- validation -------------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation over every window once (sharded over ranks): the weighted loss, the zero
        predictor's weighted loss, their ratio and the unweighted RMS error in 1/m. {} without a val set.
        """
        if self.val_loader is None:
            return {}
        self.sequence_model.eval()
        scale, alpha = self.policy.curvature_scale_1pm, self.config.loss.alpha
        sums = torch.zeros(5, dtype=torch.float64, device=self.device)
        for frames, labels in self.val_loader:
            frames, labels = frames.to(self.device), labels.to(self.device)
            pred = self.sequence_model(frames)
            err, zero, weight = weighted_error_sums(pred, labels, scale, alpha)
            valid = torch.isfinite(labels)
            sq = torch.where(valid, (pred - labels) ** 2, torch.zeros_like(pred)).sum()
            sums += torch.stack([err, zero, weight, sq, valid.sum()]).double()
        all_reduce_sum(sums, self.ctx)
        err, zero, weight, sq, count = sums.tolist()
        weight, count = max(weight, 1e-300), max(count, 1.0)
        val_loss, zero_loss = err / weight, zero / weight
        return {
            "val_loss": val_loss,
            "val_zero_loss": zero_loss,
            "val_ratio": val_loss / zero_loss if zero_loss > 0 else math.inf,
            "val_rmse_1pm": math.sqrt(sq / count),
            "val_frames": int(count),
        }

    # -- checkpoints ------------------------------------------------------------------------------------

    def checkpoint_path(self, name: str) -> Path | None:
        return self.out_dir / CHECKPOINT_DIR / name if self.out_dir is not None else None

    def save(self, name: str = LAST) -> Path | None:
        """Write a resumable checkpoint (rank 0 only; atomic). Returns its path on rank 0, else None."""
        path = self.checkpoint_path(name)
        if path is None or not self.ctx.is_main:
            return None
        extra = {
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
            "best_val_loss": self.best_val_loss,
            "val": self.last_val,
            "epoch": self.step_count / self.steps_per_epoch,
            "total_steps": self.total_steps,
            "world_size": self.ctx.world_size,
            "data": self.data_info,
        }
        save_checkpoint(
            path,
            self.policy,
            step=self.step_count,
            optimizer_state=self.optimizer.state_dict(),
            train_config=to_dict(self.config),
            extra=extra,
        )
        if name == LAST:
            self.last_checkpoint = path
        return path

    def restore(self, path: str | Path) -> None:
        """Continue from a checkpoint written by `save`: weights, optimiser, schedule, step, RNG, best.

        Raises:
            ValueError: the file is not a resumable checkpoint, its config differs from this run's in
                anything but RESUME_FREE_KEYS, or its weights do not fit this policy.
        """
        payload = read_checkpoint(path, map_location=self.device)
        check_resumable(payload.get("train_config"), to_dict(self.config), str(path))
        load_weights(self.policy, payload["state_dict"], source=str(path))
        extra = payload.get("extra") or {}
        if payload.get("optimizer") is None or "scheduler" not in extra:
            raise ValueError(f"{path} holds no optimiser/scheduler state, so it cannot be resumed")
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(extra["scheduler"])
        self.step_count = int(payload["step"])
        self.best_val_loss = float(extra.get("best_val_loss", math.inf))
        self.last_val = dict(extra.get("val") or {})
        if "rng" in extra:
            set_rng_state(extra["rng"])
        self.last_checkpoint = Path(path)
        self._resumed_from = self.step_count

    # -- the run ----------------------------------------------------------------------------------------

    def fit(self, stop_at_step: int | None = None) -> dict[str, Any]:
        """Train to `total_steps` (or stop after `stop_at_step`, saving `last.pt`, as an interruption would).

        Returns:
            A summary: steps, epochs, best and last validation, last training loss, time, frames/s, paths.
        """
        from tqdm.auto import tqdm

        self._open_outputs()
        bar = tqdm(
            total=self.total_steps,
            initial=self.step_count,
            unit="step",
            dynamic_ncols=True,
            disable=not (self.ctx.is_main and self.config.progress),
        )
        frames_per_step = self.config.batch * self.config.data.window
        start, window_time, window_frames = time.perf_counter(), time.perf_counter(), 0
        start_step, smoothed, stats, interval_losses = self.step_count, None, {}, []
        try:
            while self.step_count < self.total_steps:
                epoch, done = divmod(self.step_count, self.steps_per_epoch)
                self.sampler.set_epoch(epoch, skip=done * self.batch_per_rank)
                tick = time.perf_counter()
                for frames, labels in self.loader:
                    check()  # a Ctrl-C swallowed where it landed (common/interrupts.py)
                    stats = self.step(frames, labels)
                    now = time.perf_counter()
                    fps = frames_per_step / max(now - tick, 1e-9)
                    tick = now
                    smoothed = stats["loss"] if smoothed is None else 0.9 * smoothed + 0.1 * stats["loss"]
                    bar.update(1)
                    bar.set_postfix(loss=f"{smoothed:.4g}", fps=f"{fps:.0f}", epoch=epoch + 1)
                    window_frames += frames_per_step
                    interval_losses.append(stats["loss"])
                    if self.step_count % self.config.log_interval == 0:
                        rate = window_frames / max(now - window_time, 1e-9)
                        mean_loss = sum(interval_losses) / len(interval_losses)
                        record = {**stats, "loss": mean_loss, "last_loss": stats["loss"]}
                        self.metrics.write("train", self.step_count, epoch=epoch, frames_per_s=rate, **record)
                        window_time, window_frames, interval_losses = now, 0, []
                    self._after_step(stop_at_step)
                    if self.step_count >= self.total_steps or self.step_count == stop_at_step:
                        break
                if stop_at_step is not None and self.step_count >= stop_at_step:
                    break
        finally:
            bar.close()
        elapsed = time.perf_counter() - start
        summary = {
            "steps": self.step_count,
            "total_steps": self.total_steps,
            "epochs": self.step_count / self.steps_per_epoch,
            "train_loss": stats.get("loss"),
            "best_val_loss": self.best_val_loss if math.isfinite(self.best_val_loss) else None,
            **self.last_val,
            "elapsed_s": elapsed,
            "frames_per_s": (self.step_count - start_step) * frames_per_step / max(elapsed, 1e-9),
            "last_checkpoint": str(self.last_checkpoint) if self.last_checkpoint else None,
        }
        if self.ctx.is_main and self.out_dir is not None:
            self.metrics.write("event", self.step_count, event="end", **_numbers(summary))
            best = self.checkpoint_path(BEST)
            summary["best_checkpoint"] = str(best) if best and best.is_file() else None
            curves = plot_loss_curves(read_metrics(self.metrics.path), self.out_dir / CURVES_FILE)
            summary["loss_curves"] = str(curves) if curves else None
        self.metrics.close()
        return summary

    def _after_step(self, stop_at_step: int | None) -> None:
        """Validate and checkpoint when due."""
        step, cfg = self.step_count, self.config
        interval = cfg.eval_interval or self.steps_per_epoch
        if step % interval == 0 or step == self.total_steps:
            val = self.evaluate()
            if val:
                self.last_val = val
                self.metrics.write("val", step, epoch=step / self.steps_per_epoch, **val)
                if val["val_loss"] < self.best_val_loss:
                    self.best_val_loss = val["val_loss"]
                    self.save(BEST)
            self.save(LAST)
        elif step % cfg.checkpoint_interval == 0 or step == stop_at_step:
            self.save(LAST)

    def _open_outputs(self) -> None:
        if self.out_dir is None or not self.ctx.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.out_dir / "config.yaml")
        self.metrics = MetricsLog(self.out_dir, enabled=True, resume_step=self._resumed_from)
        counts = self.policy.parameter_counts()
        self.metrics.write(
            "event",
            self.step_count,
            event="resume" if self._resumed_from is not None else "start",
            policy=self.config.policy.name,
            device=str(self.device),
            amp_bf16=self.amp_bf16,
            world_size=self.ctx.world_size,
            total_steps=self.total_steps,
            steps_per_epoch=self.steps_per_epoch,
            train_windows=len(self.train_set),
            val_windows=len(self.val_set) if self.val_set is not None else 0,
            parameters=counts["total"],
            tensorboard=self.metrics.tensorboard,
        )


def _numbers(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
