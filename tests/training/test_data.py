"""Examples, label tensors, batches, STS files, parallel files and distillation examples."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from edgesbert.reference import BiEncoder
from edgesbert.training import (
    BiEncoderTask,
    Example,
    MSEEvaluator,
    MSELoss,
    Trainer,
    TrainingConfig,
    TranslationEvaluator,
    distillation_examples,
    parallel_sentences,
    read_parallel_stsb,
    read_sts_csv,
    sts_examples,
)
from edgesbert.training.data import ScoredPair, label_tensor, shuffled_batches, text_columns
from tests.training.fakes import LookupEncoder

CPU = torch.device("cpu")


def write_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_read_sts_csv_and_scale(tmp_path):
    path = write_csv(tmp_path / "sts.csv", [("A, quoted", "b", "5.0"), ("c", "d", "1.5")])
    pairs = read_sts_csv(path)
    assert pairs == [ScoredPair("A, quoted", "b", 5.0), ScoredPair("c", "d", 1.5)]
    assert [e.label for e in sts_examples(pairs)] == [1.0, 0.3]
    write_csv(tmp_path / "bad.csv", [("a", "b", "high")])
    with pytest.raises(ValueError, match=r"bad\.csv:1"):
        read_sts_csv(tmp_path / "bad.csv")


def test_examples_check_their_texts():
    with pytest.raises(TypeError, match="tuple"):
        Example(["a", "b"])
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        Example(("a", 3))
    with pytest.raises(ValueError, match="same number of texts"):
        text_columns([Example(("a", "b")), Example(("a", "b", "c"))])
    assert text_columns([Example(("a", "b")), Example(("c", "d"))]) == [["a", "c"], ["b", "d"]]


def test_label_tensors():
    assert label_tensor([Example(("a",)), Example(("b",))], CPU) is None
    classes = label_tensor([Example(("a",), 2), Example(("b",), np.int64(0))], CPU)
    assert classes is not None and classes.dtype == torch.int64 and classes.tolist() == [2, 0]
    scores = label_tensor([Example(("a",), 1), Example(("b",), 0.5)], CPU)
    assert scores is not None and scores.dtype == torch.float32 and scores.tolist() == [1.0, 0.5]
    vectors = label_tensor([Example(("a",), np.ones(3)), Example(("b",), np.zeros(3))], CPU)
    assert vectors is not None and vectors.shape == (2, 3) and vectors.dtype == torch.float32
    with pytest.raises(ValueError, match="every example"):
        label_tensor([Example(("a",), 1.0), Example(("b",))], CPU)


def test_shuffled_batches_cover_everything_once_and_follow_the_seed():
    batches = shuffled_batches(10, 4, np.random.default_rng(3))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    again = shuffled_batches(10, 4, np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


@pytest.fixture()
def parallel_folder(tmp_path, sts_pairs) -> Path:
    """stsb-en-train.csv and a "translation" (words reversed) stsb-xx-train.csv of 20 rows."""
    rows = [(p.sentence1, p.sentence2, str(p.score)) for p in sts_pairs[:20]]
    rows.append(rows[0])  # a repeated row gives each pair once

    def reverse(text: str) -> str:
        return " ".join(reversed(text.split()))

    write_csv(tmp_path / "stsb-en-train.csv", rows)
    write_csv(tmp_path / "stsb-xx-train.csv", [(reverse(a), reverse(b), s) for a, b, s in rows])
    return tmp_path


def test_parallel_sentences(parallel_folder, sts_pairs):
    pairs = read_parallel_stsb(parallel_folder, "xx", split="train")
    sentences = [s for p in sts_pairs[:20] for s in (p.sentence1, p.sentence2)]
    expected = list(dict.fromkeys((s, " ".join(reversed(s.split()))) for s in sentences))
    assert pairs == expected  # both columns, in file order, the repeated row's pairs once
    with pytest.raises(FileNotFoundError, match=r"stsb-yy-train\.csv"):
        read_parallel_stsb(parallel_folder, "yy")
    with pytest.raises(ValueError, match="split"):
        read_parallel_stsb(parallel_folder, "xx", split="validation")
    short = write_csv(parallel_folder / "short.csv", [("a", "b", "1.0")])
    with pytest.raises(ValueError, match="not parallel"):
        parallel_sentences(parallel_folder / "stsb-en-train.csv", short)
    other = write_csv(parallel_folder / "other.csv", [("a", "b", "2.0")])
    with pytest.raises(ValueError, match="score"):
        parallel_sentences(short, other)


def test_distillation_examples_embed_each_source_once():
    teacher = LookupEncoder({"hello": [1.0, 0.0], "bye": [0.0, 1.0]})
    pairs = [("hello", "hallo"), ("bye", "tschüss"), ("hello", "servus")]
    examples = distillation_examples(teacher, pairs, batch_size=2)
    assert [e.texts for e in examples] == pairs
    np.testing.assert_array_equal(np.stack([e.label for e in examples]), [[1, 0], [0, 1], [1, 0]])
    assert teacher.calls == {"hello": 1, "bye": 1}


def test_distillation_moves_the_student_to_the_teacher(tiny_bi_encoder_folder, parallel_folder, tmp_path):
    from tests.tiny_models import build_bi_encoder

    teacher = BiEncoder(tiny_bi_encoder_folder("bert-mean"))
    student = BiEncoder(build_bi_encoder(tmp_path / "student", seed=1))
    pairs = read_parallel_stsb(parallel_folder, "xx")
    sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
    mse = MSEEvaluator.from_teacher(teacher, sources, targets)
    translation = TranslationEvaluator(sources, targets)
    before = mse.evaluate(student)
    config = TrainingConfig(epochs=4, batch_size=8, learning_rate=2e-3, show_progress_bar=False)
    history = Trainer(BiEncoderTask(student, MSELoss()), config, evaluator=mse).fit(
        distillation_examples(teacher, pairs)
    )
    assert history.best is not None and history.best.result.primary > before.primary
    assert mse.evaluate(student).mse < before.mse
    assert 0.0 <= translation.evaluate(student).primary <= 1.0
