"""Exported folders, run by the runtime, agree with the PyTorch reference; failed exports change nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import BI_ENCODERS, CROSS_ENCODERS


@pytest.mark.parametrize("name", sorted(BI_ENCODERS))
def test_runtime_encode_matches_reference(name, exported, tiny_bi_encoder_folder, stsb_sentences):
    from edgesbert.reference import BiEncoder
    from edgesbert.runtime import BiEncoder as RuntimeBiEncoder

    reference = BiEncoder(tiny_bi_encoder_folder(name))
    model = RuntimeBiEncoder(exported(name))
    texts = [*stsb_sentences, "", "word " * 500]
    for options in ({}, {"normalize_embeddings": True}, {"prompt": "q: ", "truncate_dim": 8}):
        np.testing.assert_allclose(
            model.encode(texts, **options), reference.encode(texts, **options), atol=1e-4
        )
    assert model.embedding_dimension == reference.embedding_dimension
    assert model.max_seq_length == reference.max_seq_length
    assert model.prompts == reference.prompts and model.default_prompt_name == reference.default_prompt_name
    assert model.similarity_fn_name == reference.similarity_fn_name


@pytest.mark.parametrize("name", sorted(CROSS_ENCODERS))
def test_runtime_predict_and_rank_match_reference(name, exported, tiny_cross_encoder_folder, stsb_sentences):
    from edgesbert.reference import CrossEncoder
    from edgesbert.runtime import CrossEncoder as RuntimeCrossEncoder

    reference = CrossEncoder(tiny_cross_encoder_folder(name))
    model = RuntimeCrossEncoder(exported(name, "cross-encoder"))
    pairs = list(zip(stsb_sentences[0::2], stsb_sentences[1::2], strict=True))
    np.testing.assert_allclose(model.predict(pairs), reference.predict(pairs), atol=1e-4)
    assert model.spec.labels == reference.labels
    if model.num_labels == 1:
        query, documents = stsb_sentences[0], stsb_sentences[1:60]
        expected = [r.corpus_id for r in reference.rank(query, documents)]
        assert [r.corpus_id for r in model.rank(query, documents)] == expected
    else:
        np.testing.assert_allclose(
            model.predict(pairs, apply_softmax=True), reference.predict(pairs, apply_softmax=True), atol=1e-4
        )


@pytest.mark.parametrize(
    ("name", "kind", "inputs"),
    [
        ("bert-mean", "bi-encoder", ["input_ids", "attention_mask", "token_type_ids"]),
        ("distilbert-cls-dense", "bi-encoder", ["input_ids", "attention_mask"]),
        ("bert-1", "cross-encoder", ["input_ids", "attention_mask", "token_type_ids"]),
        ("distilbert-3", "cross-encoder", ["input_ids", "attention_mask"]),
    ],
)
def test_graph_declares_token_type_ids_only_where_the_architecture_has_them(name, kind, inputs, exported):
    import onnx

    folder = exported(name, kind)
    manifest = json.loads((folder / "edgesbert.json").read_text())
    variant = manifest["variants"][0]
    assert variant["inputs"] == inputs
    graph = onnx.load(str(folder / variant["file"]))
    assert [i.name for i in graph.graph.input] == inputs
    for graph_input in graph.graph.input:  # dynamic batch and sequence axes
        dims = graph_input.type.tensor_type.shape.dim
        assert dims[0].dim_param and dims[1].dim_param
    assert [o.name for o in graph.graph.output] == variant["outputs"]


def test_manifest_records_validation_and_checksums(exported):
    from edgesbert.runtime.manifest import Manifest
    from edgesbert.runtime.verify import sha256_of

    folder = exported("bert-mean")
    manifest = Manifest.load(folder)
    figures = manifest.variant().validation
    assert figures["max_abs_diff"] <= 1e-4 and figures["mean_cosine"] >= 0.9999 and figures["samples"] == 64
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"edgesbert.json"}
    assert set(manifest.provenance.checksums) == files  # every file, the interop ones too
    assert {"onnx/model.onnx", "tokenizer.json", "config.json", "tokenizer_config.json"} <= files
    for file, digest in manifest.provenance.checksums.items():
        assert sha256_of(folder / file) == digest
    assert {"torch", "transformers", "onnxruntime", "edgesbert"} <= set(manifest.provenance.versions)
    assert manifest.embedding is not None and manifest.embedding.pooling_in_graph


def test_pooling_outside_the_graph_matches_reference(tiny_bi_encoder_folder, tmp_path, stsb_sentences):
    from edgesbert.exporters import export_model
    from edgesbert.reference import BiEncoder
    from edgesbert.runtime import load

    for name in ("bert-mean", "bert-lasttoken", "bert-max-st6"):
        source = tiny_bi_encoder_folder(name)
        manifest = export_model(source, tmp_path / name, pooling_in_graph=False, validation_size=32)
        assert manifest.variant().outputs == ("last_hidden_state",)
        expected = BiEncoder(source).encode(stsb_sentences)
        np.testing.assert_allclose(load(tmp_path / name).encode(stsb_sentences), expected, atol=1e-4)


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_failed_validation_leaves_existing_folder_intact(exported, tiny_bi_encoder_folder, tmp_path):
    import shutil

    from edgesbert.errors import ValidationFailedError
    from edgesbert.exporters import Tolerance, export_model

    target = tmp_path / "model"
    shutil.copytree(exported("bert-mean"), target)
    before = _snapshot(target)
    impossible = Tolerance(max_abs_diff=0.0, min_mean_cosine=1.0)
    with pytest.raises(ValidationFailedError, match="disagrees with the PyTorch reference"):
        export_model(
            tiny_bi_encoder_folder("bert-lasttoken"), target, tolerance=impossible, validation_size=16
        )
    assert _snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging folder left behind


def test_export_replaces_an_edgesbert_folder_whole(exported, tiny_bi_encoder_folder, tmp_path):
    import shutil

    from edgesbert.exporters import export_model
    from edgesbert.runtime import load

    target = tmp_path / "model"
    shutil.copytree(exported("bert-mean"), target)
    (target / "stale.txt").write_text("from an older export")
    export_model(tiny_bi_encoder_folder("bert-lasttoken"), target, validation_size=16)
    assert not (target / "stale.txt").exists()
    assert load(target).spec.pooling.value == "lasttoken"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_export_refuses_to_overwrite_other_folders(tiny_bi_encoder_folder, tmp_path):
    from edgesbert.errors import ExportError
    from edgesbert.exporters import export_model

    target = tmp_path / "my-documents"
    target.mkdir()
    (target / "notes.txt").write_text("precious")
    with pytest.raises(ExportError, match="not an edgesbert model folder"):
        export_model(tiny_bi_encoder_folder("bert-mean"), target)
    assert (target / "notes.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-documents"]


def test_export_of_a_missing_model_says_what_was_tried(tmp_path):
    from edgesbert.errors import ModelNotFoundError
    from edgesbert.exporters import export_model

    with pytest.raises(ModelNotFoundError, match="does not exist"):
        export_model(tmp_path / "no-such-model", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_dense_models_need_pooling_in_the_graph(tiny_bi_encoder_folder, tmp_path):
    from edgesbert.errors import ExportError
    from edgesbert.exporters import export_model

    with pytest.raises(ExportError, match="Dense"):
        export_model(tiny_bi_encoder_folder("distilbert-cls-dense"), tmp_path / "out", pooling_in_graph=False)
    assert not (tmp_path / "out").exists()


def test_bi_encoder_rank_is_the_same_for_reference_and_runtime(
    exported, tiny_bi_encoder_folder, stsb_sentences
):
    from edgesbert.reference import BiEncoder
    from edgesbert.runtime import load

    query, documents = stsb_sentences[0], stsb_sentences[1:40]
    expected = BiEncoder(tiny_bi_encoder_folder("bert-sqrt-prompts")).rank(query, documents, top_k=10)
    actual = load(exported("bert-sqrt-prompts")).rank(query, documents, top_k=10, return_documents=True)
    assert [r.corpus_id for r in actual] == [r.corpus_id for r in expected]
    np.testing.assert_allclose([r.score for r in actual], [r.score for r in expected], atol=1e-4)
    assert [r.text for r in actual] == [documents[r.corpus_id] for r in actual]
    assert actual[0].score >= actual[-1].score
