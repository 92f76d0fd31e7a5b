"""One training loop for bi-encoders and cross-encoders.

AdamW, linear warm-up and decay, gradient clipping, seeded shuffling, evaluation every N steps,
best-model and periodic checkpoints, a progress bar and a final save.

Output folder layout (when ``output_folder`` is given)::

    output_folder/final/                 the model after the last step
    output_folder/best/                  the model at the best evaluation (``save_best``)
    output_folder/checkpoints/step-N/    every ``checkpoint_steps`` steps (the last ``checkpoint_limit``)
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from edgesbert.training.data import Example, shuffled_batches

if TYPE_CHECKING:
    from edgesbert.training.evaluators import EvaluationResult, Evaluator
    from edgesbert.training.tasks import TrainingTask

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingConfig:
    """How to train; every field has a sentence-transformers-like default.

    Attributes:
        epochs: passes over the examples.
        batch_size: examples per step (the last batch of an epoch may be smaller).
        learning_rate: peak learning rate of AdamW.
        warmup_ratio: share of the steps over which the rate rises linearly from 0; it then falls
            linearly to 0 at the last step.
        weight_decay: AdamW weight decay, not applied to biases and normalization weights.
        max_grad_norm: clip the gradients' global norm to this; None does not clip.
        seed: seeds the shuffling and torch's generator (dropout), so equal runs give equal models.
        max_steps: stop after this many steps, even within an epoch.
        evaluation_steps: evaluate every N steps; None evaluates at the end of each epoch. The last
            step is always evaluated.
        checkpoint_steps: save a checkpoint every N steps (needs an output folder); None saves none.
        checkpoint_limit: keep only the newest N checkpoints; None keeps all.
        save_best: save the model at its best evaluation to ``output_folder/best``.
        show_progress_bar: show a tqdm bar with the loss.
    """

    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float | None = 1.0
    seed: int = 42
    max_steps: int | None = None
    evaluation_steps: int | None = None
    checkpoint_steps: int | None = None
    checkpoint_limit: int | None = None
    save_best: bool = True
    show_progress_bar: bool = True

    def __post_init__(self) -> None:
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "max_steps": self.max_steps,
            "evaluation_steps": self.evaluation_steps,
            "checkpoint_steps": self.checkpoint_steps,
            "checkpoint_limit": self.checkpoint_limit,
        }
        for name, value in positive.items():
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must not be negative, got {self.weight_decay}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be positive or None, got {self.max_grad_norm}")


@dataclass(frozen=True)
class Evaluation:
    """One evaluation during training: after which step and epoch (0-based), and its result."""

    step: int
    epoch: int
    result: EvaluationResult


@dataclass
class TrainingHistory:
    """What a training run did: the loss of every step, the evaluations and the folders it wrote."""

    steps: int = 0
    losses: list[float] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    best: Evaluation | None = None
    final_folder: Path | None = None
    best_folder: Path | None = None
    checkpoints: list[Path] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed torch's generators (CPU and GPU); call it before building a new head to make it reproducible."""
    torch.manual_seed(seed)


def _optimizer(modules: Sequence[nn.Module], config: TrainingConfig) -> torch.optim.AdamW:
    parameters = [p for module in modules for p in module.parameters() if p.requires_grad]
    decay = [p for p in parameters if p.ndim >= 2]
    no_decay = [p for p in parameters if p.ndim < 2]  # biases and LayerNorm weights
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.learning_rate)


def linear_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Rise linearly from 0 over ``warmup_steps``, then fall linearly to 0 at ``total_steps``.

    The same curve as transformers' ``get_linear_schedule_with_warmup``.
    """

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Trainer:
    """Trains a task's model on examples; the same loop for every kind of model and loss."""

    def __init__(
        self,
        task: TrainingTask,
        config: TrainingConfig | None = None,
        *,
        evaluator: Evaluator | None = None,
        output_folder: str | Path | None = None,
    ) -> None:
        """Prepare a run.

        Args:
            task: the model and its loss (``BiEncoderTask`` or ``CrossEncoderTask``).
            config: hyper-parameters and schedule; the defaults of ``TrainingConfig`` if None.
            evaluator: evaluated on the schedule of ``config``; its result's ``primary`` picks the best model.
            output_folder: where final, best and checkpoint models go; None saves nothing.
        """
        self.task = task
        self.config = config or TrainingConfig()
        self.evaluator = evaluator
        self.output_folder = None if output_folder is None else Path(output_folder)
        if self.config.checkpoint_steps is not None and self.output_folder is None:
            raise ValueError("checkpoint_steps needs an output_folder to write the checkpoints to")
        self.history = TrainingHistory()

    def fit(self, examples: Sequence[Example]) -> TrainingHistory:
        """Train on ``examples`` and return the history; the model ends in eval mode, as trained last."""
        if not examples:
            raise ValueError("fit needs at least one example")
        config = self.config
        self.history = TrainingHistory()
        seed_everything(config.seed)
        rng = np.random.default_rng(config.seed)
        total = config.epochs * math.ceil(len(examples) / config.batch_size)
        total = min(total, config.max_steps) if config.max_steps else total
        modules = [self.task.network, self.task.loss]
        optimizer = _optimizer(modules, config)
        schedule = linear_schedule(optimizer, math.ceil(config.warmup_ratio * total), total)
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        self.task.network.train()
        with tqdm(total=total, desc="Training", disable=not config.show_progress_bar) as bar:
            for epoch in range(config.epochs):
                for indices in shuffled_batches(len(examples), config.batch_size, rng):
                    loss = self._step([examples[i] for i in indices], optimizer, parameters)
                    schedule.step()
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}")
                    self._after_step(epoch, last=self.history.steps == total)
                    if self.history.steps == total:
                        break
                if config.evaluation_steps is None:
                    self._evaluate(epoch)
                if self.history.steps == total:
                    break
        self.task.network.eval()
        if self.output_folder is not None:
            self.history.final_folder = self.task.save(self.output_folder / "final")
        return self.history

    def _step(
        self, batch: list[Example], optimizer: torch.optim.Optimizer, parameters: list[torch.Tensor]
    ) -> float:
        loss = self.task.batch_loss(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss is {loss.item()} at step {self.history.steps + 1}; lower the learning rate"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(parameters, self.config.max_grad_norm)
        optimizer.step()
        self.history.steps += 1
        value = float(loss.item())
        self.history.losses.append(value)
        return value

    def _after_step(self, epoch: int, last: bool) -> None:
        step, config = self.history.steps, self.config
        every_n = config.evaluation_steps is not None and step % config.evaluation_steps == 0
        if every_n or (last and config.evaluation_steps is not None):
            self._evaluate(epoch)
        if config.checkpoint_steps is not None and step % config.checkpoint_steps == 0:
            self._checkpoint()

    def _evaluate(self, epoch: int) -> None:
        if self.evaluator is None:
            return
        history = self.history
        if history.evaluations and history.evaluations[-1].step == history.steps:
            return
        evaluation = Evaluation(history.steps, epoch, self.task.evaluate(self.evaluator))
        history.evaluations.append(evaluation)
        logger.info("step %d: %s", evaluation.step, evaluation.result)
        best = history.best
        if best is None or evaluation.result.primary > best.result.primary:
            history.best = evaluation
            if self.config.save_best and self.output_folder is not None:
                history.best_folder = self.task.save(self.output_folder / "best")

    def _checkpoint(self) -> None:
        if self.output_folder is None:  # __init__ refuses checkpoint_steps without a folder
            return
        folder = self.output_folder / "checkpoints" / f"step-{self.history.steps}"
        self.history.checkpoints.append(self.task.save(folder))
        limit = self.config.checkpoint_limit
        while limit is not None and len(self.history.checkpoints) > limit:
            shutil.rmtree(self.history.checkpoints.pop(0), ignore_errors=True)
