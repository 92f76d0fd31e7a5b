"""Saved models load in edgesbert's reference and in sentence-transformers with equal outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesbert.folders import staged_folder
from edgesbert.reference import BiEncoder, CrossEncoder
from edgesbert.reference.st_folder import read_layout
from edgesbert.runtime.manifest import Activation
from edgesbert.training import (
    BiEncoderTask,
    BinaryCrossEntropyLoss,
    CoSENTLoss,
    CrossEncoderTask,
    Trainer,
    TrainingConfig,
    save_bi_encoder,
    save_cross_encoder,
    sts_examples,
)

st = pytest.importorskip("sentence_transformers")

FAST = TrainingConfig(batch_size=8, learning_rate=1e-3, show_progress_bar=False)


@pytest.mark.parametrize("name", ["bert-mean", "distilbert-cls-dense"])
def test_trained_bi_encoder_loads_in_both_with_equal_embeddings(
    name, tiny_bi_encoder_folder, sts_pairs, tmp_path
):
    model = BiEncoder(tiny_bi_encoder_folder(name))
    Trainer(BiEncoderTask(model, CoSENTLoss()), FAST).fit(sts_examples(sts_pairs[:16]))
    folder = save_bi_encoder(model, tmp_path / "saved")
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    expected = {
        "modules.json",
        "config_sentence_transformers.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    assert expected <= files
    assert ("2_Normalize/config.json" in files) == model.network.normalize
    assert ("2_Dense/model.safetensors" in files) == (name == "distilbert-cls-dense")

    sentences = [p.sentence1 for p in sts_pairs[:32]] + ["x " * 200]  # one text past max_seq_length
    trained = model.encode(sentences)
    theirs = st.SentenceTransformer(str(folder), device="cpu")
    ours = BiEncoder(folder)
    assert theirs.max_seq_length == ours.max_seq_length == model.max_seq_length
    np.testing.assert_allclose(ours.encode(sentences), trained, atol=1e-5)
    np.testing.assert_allclose(theirs.encode(sentences), trained, atol=1e-5)


@pytest.mark.parametrize("name", ["bert-sqrt-prompts", "bert-max-st6", "bert-lasttoken"])
def test_saved_layout_keeps_pooling_prompts_and_similarity(name, tiny_bi_encoder_folder, tmp_path):
    model = BiEncoder(tiny_bi_encoder_folder(name))
    saved = read_layout(save_bi_encoder(model, tmp_path / "saved"))
    original = model.layout
    assert (saved.pooling, saved.normalize, saved.prompts) == (
        original.pooling,
        original.normalize,
        original.prompts,
    )
    assert (saved.default_prompt_name, saved.similarity) == (
        original.default_prompt_name,
        original.similarity,
    )
    assert saved.max_seq_length == model.max_seq_length


@pytest.mark.parametrize("name", ["bert-1", "distilbert-3"])
def test_cross_encoder_loads_in_both_with_equal_scores(name, tiny_cross_encoder_folder, sts_pairs, tmp_path):
    model = CrossEncoder(tiny_cross_encoder_folder(name), max_length=48)
    if model.num_labels == 1:
        Trainer(CrossEncoderTask(model, BinaryCrossEntropyLoss()), FAST).fit(sts_examples(sts_pairs[:16]))
    folder = save_cross_encoder(model, tmp_path / "saved")
    config = json.loads((folder / "config.json").read_text())
    assert "sentence_transformers" not in config  # default activation: no import path written
    pairs = [(p.sentence1, p.sentence2) for p in sts_pairs[:32]] + [("y " * 100, "z " * 100)]
    trained = model.predict(pairs)
    ours = CrossEncoder(folder)
    theirs = st.CrossEncoder(str(folder), device="cpu")
    assert ours.max_seq_length == theirs.max_seq_length == 48
    assert ours.labels == model.labels
    np.testing.assert_allclose(ours.predict(pairs), trained, atol=1e-5)
    np.testing.assert_allclose(theirs.predict(pairs), trained, atol=1e-5)


def test_cross_encoder_keeps_a_non_default_activation(tiny_cross_encoder_folder, tmp_path):
    model = CrossEncoder(tiny_cross_encoder_folder("bert-1"), activation=Activation.IDENTITY)
    folder = save_cross_encoder(model, tmp_path / "saved")
    assert CrossEncoder(folder).activation is Activation.IDENTITY
    pairs = [("A man is playing a flute.", "A man plays the flute.")]
    np.testing.assert_allclose(
        st.CrossEncoder(str(folder), device="cpu").predict(pairs), model.predict(pairs), atol=1e-5
    )


def test_a_failed_save_leaves_the_old_folder_intact(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights").write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), staged_folder(folder) as staging:
        (staging / "weights").write_text("half")
        raise RuntimeError("disk full")
    assert (folder / "weights").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    with staged_folder(folder) as staging:
        (staging / "weights").write_text("new")
    assert [p.name for p in folder.iterdir()] == ["weights"]
    assert (folder / "weights").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
