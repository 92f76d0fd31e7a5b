"""Bad input and damaged folders give clear edgesbert errors, never a backend stack trace."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgesbert.errors import DeviceNotAvailableError, ManifestError, ModelLoadError
from edgesbert.runtime import BiEncoder, CrossEncoder, load


@pytest.fixture(scope="module")
def bi(exported) -> BiEncoder:
    return BiEncoder(exported("bert-mean"))


@pytest.fixture(scope="module")
def cross(exported) -> CrossEncoder:
    return CrossEncoder(exported("bert-1", "cross-encoder"))


@pytest.fixture
def copy_of(exported, tmp_path):
    def copy(name="bert-mean", kind="bi-encoder"):
        return shutil.copytree(exported(name, kind), tmp_path / name)

    return copy


@pytest.mark.parametrize("precision", ["float32", "int8", "uint8", "binary", "ubinary"])
def test_empty_list_gives_empty_matrix_of_the_right_shape(bi, precision):
    out = bi.encode([], precision=precision)
    width = 32 if precision in ("float32", "int8", "uint8") else 4
    assert out.shape == (0, width)
    assert out.dtype == bi.encode(["a", "b"], precision=precision).dtype


def test_empty_string_is_embedded_like_the_reference(bi, tiny_bi_encoder_folder):
    from edgesbert.reference import BiEncoder as Reference

    expected = Reference(tiny_bi_encoder_folder("bert-mean")).encode(["", "x"])
    np.testing.assert_allclose(bi.encode(["", "x"]), expected, atol=1e-4)
    assert np.isfinite(bi.encode("")).all()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, "must be a string or a list of strings, got NoneType"),
        (42, "got int"),
        (b"bytes", "got bytes"),
        (["ok", None], r"sentences\[1\] is NoneType"),
        (["ok", 3.5], r"sentences\[1\] is float"),
    ],
)
def test_non_string_input_is_refused(bi, bad, message):
    with pytest.raises(TypeError, match=message):
        bi.encode(bad)


def test_very_long_text_is_truncated_to_the_manifest_max_length(bi):
    long_text = "lorem ipsum dolor sit amet " * 4000  # about 100,000 characters
    assert len(long_text) >= 100_000
    features = bi._tokenizer([long_text])
    assert features["input_ids"].shape == (1, bi.manifest.max_seq_length)
    truncated = bi.encode(long_text)
    assert np.isfinite(truncated).all()
    # Only the first max_seq_length tokens count: a text with the same start embeds the same.
    np.testing.assert_allclose(truncated, bi.encode(long_text[:2000]), atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"truncate_dim": 33}, "truncate_dim must be in 1..32"),
        ({"precision": "float16"}, "float16"),
        ({"prompt_name": "query"}, "not one of this model's prompts"),
    ],
)
def test_bad_encode_options_are_refused(bi, options, message):
    with pytest.raises(ValueError, match=message):
        bi.encode(["a", "b"], **options)


def test_int8_output_of_a_single_text_needs_ranges(bi):
    with pytest.raises(ValueError, match="needs ranges"):
        bi.encode("one text", precision="int8")


def test_rank_options_and_errors(cross, exported):
    documents = ["first document", "second one", "third"]
    results = cross.rank("query", documents, top_k=2, return_documents=True)
    assert len(results) == 2 and results[0].score >= results[1].score
    assert results[0].text == documents[results[0].corpus_id]
    assert cross.rank("query", documents)[0].text is None
    assert cross.rank("query", []) == []
    with pytest.raises(TypeError, match="query must be a string"):
        cross.rank(None, documents)
    with pytest.raises(TypeError, match=r"documents\[1\]"):
        cross.rank("query", ["ok", None])
    with pytest.raises(ValueError, match="top_k"):
        cross.rank("query", documents, top_k=0)
    with pytest.raises(TypeError, match=r"pairs\[0\]"):
        cross.predict([("only one text",)])
    three_labels = CrossEncoder(exported("distilbert-3", "cross-encoder"))
    with pytest.raises(ValueError, match="one output label"):
        three_labels.rank("query", documents)


def test_missing_graph_file(copy_of):
    folder = copy_of()
    (folder / "onnx" / "model.onnx").unlink()
    with pytest.raises(ModelLoadError, match=r"model\.onnx is missing"):
        load(folder)


def test_corrupt_graph_file_is_reported_with_its_checksum(copy_of):
    folder = copy_of()
    (folder / "onnx" / "model.onnx").write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelLoadError, match=r"model\.onnx is damaged \(checked against the checksums"):
        load(folder)
    with pytest.raises(ModelLoadError, match=r"model\.onnx is damaged"):  # named even when not verified
        load(folder, verify=False)


def test_corrupt_tokenizer_file(copy_of):
    folder = copy_of()
    (folder / "tokenizer.json").write_text("{ not json")
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json is damaged"):
        load(folder)
    with pytest.raises(ModelLoadError, match="cannot read the tokenizer"):
        load(folder, verify=False)


def test_unknown_manifest_version(copy_of):
    folder = copy_of()
    manifest = json.loads((folder / "edgesbert.json").read_text())
    manifest["schema_version"] = 99
    (folder / "edgesbert.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match=r"edgesbert.json: field 'schema_version' is 99"):
        load(folder)


def test_missing_folder_and_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="not an edgesbert model folder"):
        load(tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        BiEncoder(tmp_path / "nowhere")


def test_wrong_kind_and_unknown_variant(exported):
    with pytest.raises(ManifestError, match="holds a cross-encoder, not a bi-encoder"):
        BiEncoder(exported("bert-1", "cross-encoder"))
    with pytest.raises(ManifestError, match=r"no variant 'int8'; it has \['fp32'\]"):
        BiEncoder(exported("bert-mean"), variant="int8")


def test_unavailable_and_unknown_devices(exported):
    with pytest.raises(DeviceNotAvailableError, match="cannot run on 'npu' here: its providers are"):
        load(exported("bert-mean"), device="npu")
    with pytest.raises(ValueError, match="device must be one of"):
        load(exported("bert-mean"), device="tpu")
    with pytest.raises(ValueError, match="threads must be at least 1"):
        load(exported("bert-mean"), threads=0)


def test_threads_setting_gives_the_same_embeddings(exported, bi):
    one_thread = BiEncoder(exported("bert-mean"), threads=1)
    np.testing.assert_allclose(one_thread.encode(["a b c", "d"]), bi.encode(["a b c", "d"]), atol=1e-6)
