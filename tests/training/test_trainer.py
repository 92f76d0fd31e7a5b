"""The shared training loop on tiny models: the loss goes down, seeds reproduce, evaluation, checkpoints."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch

from edgesbert.reference import BiEncoder, CrossEncoder
from edgesbert.training import (
    BiEncoderLoss,
    BiEncoderTask,
    BinaryCrossEntropyLoss,
    CoSENTLoss,
    CrossEncoderTask,
    CrossEntropyLoss,
    Example,
    MatryoshkaLoss,
    MultipleNegativesRankingLoss,
    Trainer,
    TrainingConfig,
    sts_examples,
)
from edgesbert.training.trainer import linear_schedule

FAST = {"learning_rate": 1e-3, "warmup_ratio": 0.1, "show_progress_bar": False}


def training_loss(task, examples) -> float:
    """The loss over all examples in eval mode (no dropout), without training."""
    task.network.eval()
    with torch.no_grad():
        return float(task.batch_loss(examples))


def state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in network.state_dict().items()}


def test_bi_encoder_loss_goes_down_and_seed_reproduces(tiny_bi_encoder_folder, sts_pairs):
    examples = sts_examples(sts_pairs[:48])
    config = TrainingConfig(epochs=3, batch_size=16, seed=7, **FAST)
    runs = []
    for seed in (7, 7, 8):
        task = BiEncoderTask(BiEncoder(tiny_bi_encoder_folder("bert-mean")), CoSENTLoss())
        before = training_loss(task, examples)
        history = Trainer(task, replace(config, seed=seed)).fit(examples)
        runs.append((history, state(task.network)))
        assert history.steps == 9 and len(history.losses) == 9
        assert training_loss(task, examples) < before
        assert not task.network.training
    (first, first_state), (second, second_state), (other, _) = runs
    assert first.losses == second.losses
    assert all(torch.equal(first_state[name], second_state[name]) for name in first_state)
    assert other.losses != first.losses


def test_matryoshka_mnrl_with_hard_negatives_trains(tiny_bi_encoder_folder, sts_pairs):
    examples = [
        Example((p.sentence1, p.sentence2, q.sentence2))
        for p, q in zip(sts_pairs[:32], sts_pairs[100:132], strict=True)
    ]
    loss = MatryoshkaLoss(MultipleNegativesRankingLoss(), dims=[8, 32], weights=[0.5, 1.0])
    task = BiEncoderTask(BiEncoder(tiny_bi_encoder_folder("distilbert-cls-dense")), loss)
    with pytest.raises(ValueError, match="exceed"):  # the dense layer makes the embeddings 16 wide
        Trainer(task, TrainingConfig(**FAST)).fit(examples)
    task = BiEncoderTask(BiEncoder(tiny_bi_encoder_folder("bert-mean")), loss)
    before = training_loss(task, examples)
    Trainer(task, TrainingConfig(epochs=2, batch_size=8, **FAST)).fit(examples)
    assert training_loss(task, examples) < before


def test_cross_encoder_bce_on_soft_scores(tiny_cross_encoder_folder, sts_pairs):
    examples = sts_examples(sts_pairs[:48])  # scores / 5
    task = CrossEncoderTask(CrossEncoder(tiny_cross_encoder_folder("bert-1")), BinaryCrossEntropyLoss())
    before = training_loss(task, examples)
    Trainer(task, TrainingConfig(epochs=3, **FAST)).fit(examples)
    assert training_loss(task, examples) < before


def test_cross_encoder_cross_entropy_over_three_labels(tiny_cross_encoder_folder, sts_pairs):
    examples = [Example((p.sentence1, p.sentence2), min(int(p.score * 3 / 5), 2)) for p in sts_pairs[:48]]
    task = CrossEncoderTask(CrossEncoder(tiny_cross_encoder_folder("distilbert-3")), CrossEntropyLoss())
    before = training_loss(task, examples)
    Trainer(task, TrainingConfig(epochs=3, **FAST)).fit(examples)
    assert training_loss(task, examples) < before


def test_cross_encoder_starts_from_bi_encoder_weights(tiny_bi_encoder_folder, sts_pairs):
    torch.manual_seed(0)
    model = CrossEncoder(tiny_bi_encoder_folder("bert-mean"), num_labels=1)
    assert model.num_labels == 1
    examples = sts_examples(sts_pairs[:16])
    history = Trainer(CrossEncoderTask(model, BinaryCrossEntropyLoss()), TrainingConfig(**FAST)).fit(examples)
    assert history.steps == 1 and math.isfinite(history.losses[0])


@dataclass(frozen=True)
class ScriptedResult:
    primary: float

    def metrics(self) -> dict[str, float]:
        return {"primary": self.primary}


class ScriptedEvaluator:
    """Returns the given primaries in turn; records the model's embeddings and mode at each call."""

    def __init__(self, primaries: list[float], probe: list[str]) -> None:
        self.primaries = iter(primaries)
        self.probe = probe
        self.snapshots: list[np.ndarray] = []
        self.training_modes: list[bool] = []

    def evaluate(self, model: BiEncoder) -> ScriptedResult:
        self.training_modes.append(model.network.training)
        self.snapshots.append(model.encode(self.probe))
        return ScriptedResult(next(self.primaries))


def test_evaluation_every_n_steps_and_best_model(tiny_bi_encoder_folder, sts_pairs, tmp_path):
    examples = sts_examples(sts_pairs[:40])  # 5 steps of 8
    probe = [p.sentence1 for p in sts_pairs[:5]]
    evaluator = ScriptedEvaluator([0.1, 0.5, 0.3], probe)
    task = BiEncoderTask(BiEncoder(tiny_bi_encoder_folder("bert-mean")), CoSENTLoss())
    config = TrainingConfig(batch_size=8, evaluation_steps=2, **FAST)
    history = Trainer(task, config, evaluator=evaluator, output_folder=tmp_path).fit(examples)
    assert [e.step for e in history.evaluations] == [2, 4, 5]  # every 2 steps, and the last step
    assert evaluator.training_modes == [False, False, False]  # evaluated without dropout
    assert history.best is not None and history.best.step == 4
    assert history.best_folder == tmp_path / "best" and history.final_folder == tmp_path / "final"
    np.testing.assert_allclose(BiEncoder(tmp_path / "best").encode(probe), evaluator.snapshots[1], atol=1e-6)
    np.testing.assert_allclose(
        BiEncoder(tmp_path / "final").encode(probe), task.model.encode(probe), atol=1e-6
    )
    assert not np.allclose(evaluator.snapshots[1], evaluator.snapshots[2])
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no staging folders left


def test_evaluation_at_epoch_ends_and_max_steps(tiny_bi_encoder_folder, sts_pairs):
    examples = sts_examples(sts_pairs[:24])  # 3 steps of 8 per epoch
    evaluator = ScriptedEvaluator([0.0] * 10, ["a"])
    task = BiEncoderTask(BiEncoder(tiny_bi_encoder_folder("bert-mean")), CoSENTLoss())
    history = Trainer(
        task, TrainingConfig(epochs=3, batch_size=8, max_steps=7, **FAST), evaluator=evaluator
    ).fit(examples)
    assert history.steps == 7
    assert [(e.step, e.epoch) for e in history.evaluations] == [(3, 0), (6, 1), (7, 2)]
    assert history.best_folder is None  # no output folder: nothing saved


def test_checkpoints_keep_the_newest(tiny_bi_encoder_folder, sts_pairs, tmp_path):
    examples = sts_examples(sts_pairs[:48])  # 6 steps of 8
    task = BiEncoderTask(BiEncoder(tiny_bi_encoder_folder("bert-mean")), CoSENTLoss())
    config = TrainingConfig(batch_size=8, checkpoint_steps=2, checkpoint_limit=2, **FAST)
    history = Trainer(task, config, output_folder=tmp_path).fit(examples)
    expected = [tmp_path / "checkpoints" / "step-4", tmp_path / "checkpoints" / "step-6"]
    assert history.checkpoints == expected
    assert sorted((tmp_path / "checkpoints").iterdir()) == expected
    probe = ["A man is playing a flute."]
    np.testing.assert_allclose(BiEncoder(expected[-1]).encode(probe), task.model.encode(probe), atol=1e-6)


def test_linear_schedule_warms_up_then_decays():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = linear_schedule(optimizer, warmup_steps=2, total_steps=6)
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([0.0, 0.5, 1.0, 0.75, 0.5, 0.25])


class NanLoss(BiEncoderLoss):
    def forward(self, embeddings, labels):
        return embeddings[0].sum() * float("nan")


def test_trainer_errors(tiny_bi_encoder_folder, sts_pairs):
    task = BiEncoderTask(BiEncoder(tiny_bi_encoder_folder("bert-mean")), NanLoss())
    with pytest.raises(FloatingPointError, match="step 1"):
        Trainer(task, TrainingConfig(**FAST)).fit(sts_examples(sts_pairs[:4]))
    with pytest.raises(ValueError, match="at least one example"):
        Trainer(task).fit([])
    with pytest.raises(ValueError, match="output_folder"):
        Trainer(task, TrainingConfig(checkpoint_steps=5))
    with pytest.raises(ValueError, match="batch_size"):
        TrainingConfig(batch_size=0)
    with pytest.raises(ValueError, match="warmup_ratio"):
        TrainingConfig(warmup_ratio=1.0)
    with pytest.raises(TypeError, match="CrossEncoderLoss"):
        CrossEncoderTask(task.model, CoSENTLoss())
