"""The edgesbert.json contract: round trips, defaults, and refusals that name the file and the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgesbert.errors import ManifestError
from edgesbert.runtime.manifest import (
    MANIFEST_FILE,
    SCHEMA_VERSION,
    Activation,
    ClassifierSpec,
    EmbeddingSpec,
    GraphVariant,
    Manifest,
    ModelKind,
    Pooling,
    Precision,
    Provenance,
    SimilarityFunction,
    TokenizerSpec,
)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def bi_manifest() -> Manifest:
    """A bi-encoder with two variants, every optional field set away from its default."""
    return Manifest(
        kind=ModelKind.BI_ENCODER,
        max_seq_length=256,
        tokenizer=TokenizerSpec("tokenizer.json", "[PAD]", 0, padding_side="left"),
        variants=(
            GraphVariant(
                name="fp32",
                file="model.onnx",
                backend="onnxruntime",
                precision=Precision.FP32,
                inputs=INPUTS,
                outputs=("sentence_embedding",),
                sha256="ab" * 32,
                validation={"max_abs_diff": 1.5e-6, "min_cosine": 0.999999},
            ),
            GraphVariant(
                name="int8-static",
                file="model_int8.onnx",
                backend="onnxruntime",
                precision=Precision.INT8,
                inputs=INPUTS[:2],
                outputs=("token_embeddings",),
                sha256="cd" * 32,
                static_shapes=((1, 128), (1, 256)),
            ),
        ),
        provenance=Provenance(
            source_model="sentence-transformers/all-MiniLM-L6-v2",
            exported_at="2024-05-01T12:00:00+00:00",
            versions={"torch": "2.13.0", "edgesbert": "0.1.0"},
            checksums={"tokenizer.json": "ef" * 32},
        ),
        default_variant="fp32",
        embedding=EmbeddingSpec(
            dimension=384,
            pooling=Pooling.MEAN_SQRT_LEN,
            pooling_in_graph=False,
            normalize=True,
            similarity=SimilarityFunction.DOT,
            prompts={"query": "requête : ", "passage": "passage: "},
            default_prompt_name="query",
        ),
    )


def cross_manifest() -> Manifest:
    """A three-label cross-encoder with defaults left alone where it has any."""
    return Manifest(
        kind=ModelKind.CROSS_ENCODER,
        max_seq_length=512,
        tokenizer=TokenizerSpec("tokenizer.json", "[PAD]", 0),
        variants=(
            GraphVariant(
                name="fp16",
                file="model_fp16.onnx",
                backend="onnxruntime",
                precision=Precision.FP16,
                inputs=INPUTS,
                outputs=("logits",),
                sha256="01" * 32,
            ),
        ),
        provenance=Provenance("cross-encoder/nli-deberta-v3-small", "2024-05-02T08:30:00+00:00"),
        default_variant="fp16",
        classifier=ClassifierSpec(
            num_labels=3, activation=Activation.SOFTMAX, labels=("contradiction", "entailment", "neutral")
        ),
    )


BUILDERS = {"bi": bi_manifest, "cross": cross_manifest}


# --- round trips ---------------------------------------------------------------------------------


def test_to_dict_is_plain_json_with_enum_values():
    data = bi_manifest().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert data["kind"] == "bi-encoder"
    assert data["embedding"]["pooling"] == "mean_sqrt_len_tokens"
    assert data["embedding"]["similarity"] == "dot"
    assert data["variants"][0]["precision"] == "fp32"
    assert data["variants"][0]["inputs"] == list(INPUTS)
    assert data["variants"][0]["static_shapes"] == []
    assert data["variants"][1]["static_shapes"] == [[1, 128], [1, 256]]
    assert data["variants"][0]["validation"] == {"max_abs_diff": 1.5e-6, "min_cosine": 0.999999}
    assert data["classifier"] is None
    assert data["tokenizer"] == {
        "file": "tokenizer.json",
        "pad_token": "[PAD]",
        "pad_token_id": 0,
        "padding_side": "left",
    }


def test_cross_encoder_to_dict():
    data = cross_manifest().to_dict()
    assert data["kind"] == "cross-encoder"
    assert data["embedding"] is None
    assert data["classifier"] == {
        "num_labels": 3,
        "activation": "softmax",
        "labels": ["contradiction", "entailment", "neutral"],
    }


@pytest.mark.parametrize("which", ["bi", "cross"])
def test_from_dict_inverts_to_dict(which):
    manifest = BUILDERS[which]()
    parsed = Manifest.from_dict(manifest.to_dict())
    assert parsed == manifest
    assert parsed.to_dict() == manifest.to_dict()


@pytest.mark.parametrize("which", ["bi", "cross"])
def test_save_then_load(which, tmp_path):
    manifest = BUILDERS[which]()
    path = manifest.save(tmp_path)
    assert path == tmp_path / MANIFEST_FILE
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert json.loads(text) == manifest.to_dict()
    assert Manifest.load(tmp_path) == manifest
    assert Manifest.load(str(tmp_path)) == manifest


def test_saved_file_keeps_non_ascii_prompts_readable(tmp_path):
    text = bi_manifest().save(tmp_path).read_text(encoding="utf-8")
    assert '"requête : "' in text


def test_loaded_manifest_has_tuples_and_enums(tmp_path):
    bi_manifest().save(tmp_path)
    loaded = Manifest.load(tmp_path)
    assert loaded.kind is ModelKind.BI_ENCODER
    assert loaded.embedding is not None
    assert loaded.embedding.pooling is Pooling.MEAN_SQRT_LEN
    assert loaded.embedding.similarity is SimilarityFunction.DOT
    assert loaded.embedding.prompts == {"query": "requête : ", "passage": "passage: "}
    assert loaded.embedding.default_prompt_name == "query"
    assert isinstance(loaded.variants, tuple)
    assert loaded.variants[1].precision is Precision.INT8
    assert loaded.variants[1].inputs == ("input_ids", "attention_mask")
    assert loaded.variants[1].static_shapes == ((1, 128), (1, 256))
    assert loaded.variants[0].static_shapes == ()
    assert loaded.tokenizer.padding_side == "left"
    assert loaded.provenance.versions == {"torch": "2.13.0", "edgesbert": "0.1.0"}


def test_optional_fields_take_their_defaults():
    data = bi_manifest().to_dict()
    del data["tokenizer"]["padding_side"]
    for variant in data["variants"]:
        del variant["static_shapes"], variant["validation"]
    for key in ("similarity", "prompts", "default_prompt_name"):
        del data["embedding"][key]
    del data["provenance"]["versions"], data["provenance"]["checksums"]
    parsed = Manifest.from_dict(data)
    assert parsed.tokenizer.padding_side == "right"
    assert parsed.variants[1].static_shapes == ()
    assert parsed.variants[0].validation == {}
    assert parsed.embedding is not None
    assert parsed.embedding.similarity is SimilarityFunction.COSINE
    assert parsed.embedding.prompts == {}
    assert parsed.embedding.default_prompt_name is None
    assert parsed.provenance.versions == {} and parsed.provenance.checksums == {}

    cross = cross_manifest().to_dict()
    del cross["classifier"]["labels"]
    assert Manifest.from_dict(cross).classifier == ClassifierSpec(3, Activation.SOFTMAX, ())


# --- variants ------------------------------------------------------------------------------------


def test_variant_by_name_and_default():
    manifest = bi_manifest()
    assert manifest.variant().name == "fp32"
    assert manifest.variant(None) is manifest.variants[0]
    assert manifest.variant("int8-static") is manifest.variants[1]
    assert manifest.variant("int8-static").file == "model_int8.onnx"
    assert cross_manifest().variant().precision is Precision.FP16


def test_unknown_variant_lists_the_ones_there_are():
    with pytest.raises(ManifestError) as info:
        bi_manifest().variant("int4")
    assert str(info.value) == "this model folder has no variant 'int4'; it has ['fp32', 'int8-static']"


def test_constructor_refuses_inconsistent_manifests():
    manifest = bi_manifest()
    fields = {
        "max_seq_length": 8,
        "tokenizer": manifest.tokenizer,
        "variants": manifest.variants,
        "provenance": manifest.provenance,
    }
    with pytest.raises(ManifestError, match="a bi-encoder manifest needs an 'embedding' section"):
        Manifest(kind=ModelKind.BI_ENCODER, default_variant="fp32", **fields)
    with pytest.raises(ManifestError, match="a cross-encoder manifest needs a 'classifier' section"):
        Manifest(kind=ModelKind.CROSS_ENCODER, default_variant="fp32", embedding=manifest.embedding, **fields)
    with pytest.raises(
        ManifestError, match=r"default_variant 'fp16' is not one of \['fp32', 'int8-static'\]"
    ):
        Manifest(kind=ModelKind.BI_ENCODER, default_variant="fp16", embedding=manifest.embedding, **fields)


# --- refusals: each names the file and the field -------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """Return an edit of a manifest dict that sets ``a.b[0].c`` style ``path`` to ``value``."""

    def edit(data: dict) -> None:
        *parents, last = _keys(path)
        for key in parents:
            data = data[key]
        data[last] = value

    return edit


def _delete(path: str) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        *parents, last = _keys(path)
        for key in parents:
            data = data[key]
        del data[last]

    return edit


def _keys(path: str) -> list[str | int]:
    keys: list[str | int] = []
    for part in path.split("."):
        name, _, index = part.partition("[")
        keys.append(name)
        if index:
            keys.append(int(index.rstrip("]")))
    return keys


def _refusal(tmp_path: Path, which: str, edit: Callable[[dict], None]) -> str:
    """Save, damage the JSON with ``edit``, load; return the error message, checked to name the file."""
    data = BUILDERS[which]().to_dict()
    edit(data)
    path = tmp_path / MANIFEST_FILE
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ManifestError) as info:
        Manifest.load(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


POOLINGS = "['mean', 'cls', 'max', 'mean_sqrt_len_tokens', 'lasttoken']"

REFUSALS = [
    # unknown schema version
    (
        "bi",
        _set("schema_version", 99),
        "field 'schema_version' is 99, but this edgesbert reads schema version 1; "
        "upgrade edgesbert or re-export the model with this version",
    ),
    ("bi", _set("schema_version", 0), "field 'schema_version' is 0, but"),
    # missing required fields, at every depth
    ("bi", _delete("schema_version"), "field 'schema_version' is missing"),
    ("bi", _delete("kind"), "field 'kind' is missing"),
    ("bi", _delete("max_seq_length"), "field 'max_seq_length' is missing"),
    ("bi", _delete("default_variant"), "field 'default_variant' is missing"),
    ("bi", _delete("tokenizer.pad_token_id"), "field 'tokenizer.pad_token_id' is missing"),
    ("bi", _delete("variants[1].sha256"), "field 'variants[1].sha256' is missing"),
    ("bi", _delete("embedding"), "field 'embedding' is missing"),
    ("bi", _delete("embedding.pooling"), "field 'embedding.pooling' is missing"),
    ("bi", _delete("provenance.source_model"), "field 'provenance.source_model' is missing"),
    ("cross", _delete("classifier"), "field 'classifier' is missing"),
    ("cross", _delete("classifier.num_labels"), "field 'classifier.num_labels' is missing"),
    # wrong types (a bool is no number, a float no int)
    ("bi", _set("schema_version", "1"), "field 'schema_version' must be int, got '1'"),
    ("bi", _set("max_seq_length", "512"), "field 'max_seq_length' must be int, got '512'"),
    ("bi", _set("max_seq_length", 512.0), "field 'max_seq_length' must be int, got 512.0"),
    ("bi", _set("max_seq_length", True), "field 'max_seq_length' must be int, got True"),
    ("bi", _set("max_seq_length", 0), "field 'max_seq_length' must be a positive integer, got 0"),
    (
        "bi",
        _set("embedding.dimension", -384),
        "field 'embedding.dimension' must be a positive integer, got -384",
    ),
    ("bi", _set("embedding.normalize", "yes"), "field 'embedding.normalize' must be bool, got 'yes'"),
    ("bi", _set("embedding.pooling_in_graph", 1), "field 'embedding.pooling_in_graph' must be bool, got 1"),
    ("bi", _set("tokenizer", "tokenizer.json"), "field 'tokenizer' must be dict, got 'tokenizer.json'"),
    ("bi", _set("tokenizer.pad_token", 0), "field 'tokenizer.pad_token' must be str, got 0"),
    ("bi", _set("variants", "fp32"), "field 'variants' must be list, got 'fp32'"),
    ("bi", _set("variants[0]", "fp32"), "field 'variants[0]' must be an object"),
    (
        "bi",
        _set("variants[0].inputs", ["input_ids", 3]),
        "field 'variants[0].inputs' must be a list of strings",
    ),
    (
        "bi",
        _set("variants[1].static_shapes", [[1]]),
        "field 'variants[1].static_shapes' must be [batch, sequence] pairs of positive integers, got [1]",
    ),
    (
        "bi",
        _set("variants[1].static_shapes", [[1, 0]]),
        "field 'variants[1].static_shapes' must be [batch, sequence] pairs of positive integers, got [1, 0]",
    ),
    (
        "bi",
        _set("variants[0].validation", {"max_abs_diff": "small"}),
        "field 'variants[0].validation' must map figure names to numbers",
    ),
    ("bi", _set("embedding.prompts", {"query": 1}), "field 'embedding.prompts' must map names to strings"),
    ("bi", _set("provenance.versions", ["torch"]), "field 'provenance.versions' must be dict, got ['torch']"),
    (
        "cross",
        _set("classifier.labels", "entailment"),
        "field 'classifier.labels' must be list, got 'entailment'",
    ),
    # unknown enum values
    (
        "bi",
        _set("kind", "sparse-encoder"),
        "field 'kind' must be one of ['bi-encoder', 'cross-encoder'], got 'sparse-encoder'",
    ),
    ("bi", _set("embedding.pooling", "weightedmean"), f"field 'embedding.pooling' must be one of {POOLINGS}"),
    ("bi", _set("embedding.pooling", "MEAN"), "field 'embedding.pooling' must be one of"),
    (
        "bi",
        _set("embedding.similarity", "jaccard"),
        "field 'embedding.similarity' must be one of ['cosine', 'dot', 'euclidean', 'manhattan'], "
        "got 'jaccard'",
    ),
    (
        "bi",
        _set("variants[0].precision", "int2"),
        "field 'variants[0].precision' must be one of ['fp32', 'fp16', 'int8', 'bf16', 'int4'], got 'int2'",
    ),
    (
        "cross",
        _set("classifier.activation", "relu"),
        "field 'classifier.activation' must be one of ['sigmoid', 'identity', 'softmax', 'tanh'], got 'relu'",
    ),
    # inconsistent sections, caught after parsing
    ("bi", _set("default_variant", "int4"), "default_variant 'int4' is not one of ['fp32', 'int8-static']"),
    ("bi", _set("variants[1].name", "fp32"), "variant names must be unique, got ['fp32', 'fp32']"),
    ("bi", _set("variants", []), "a manifest needs at least one graph variant"),
]


@pytest.mark.parametrize(("which", "edit", "expected"), REFUSALS)
def test_damaged_manifest_is_refused_naming_file_and_field(tmp_path, which, edit, expected):
    message = _refusal(tmp_path, which, edit)
    assert expected in message


def test_bi_encoder_parse_ignores_a_broken_classifier_section():
    # Only the section of the manifest's own kind is read.
    data = bi_manifest().to_dict()
    data["classifier"] = "not looked at"
    assert Manifest.from_dict(data) == bi_manifest()


def test_from_dict_names_the_given_source():
    data = bi_manifest().to_dict()
    data["max_seq_length"] = "long"
    with pytest.raises(ManifestError) as info:
        Manifest.from_dict(data, source="models/minilm/edgesbert.json")
    assert str(info.value) == "models/minilm/edgesbert.json: field 'max_seq_length' must be int, got 'long'"
    with pytest.raises(ManifestError) as info:
        Manifest.from_dict(data)
    assert str(info.value).startswith("edgesbert.json: field 'max_seq_length'")


@pytest.mark.parametrize("content", ["[1, 2]", '"a string"', "42", "null"])
def test_json_that_is_not_an_object_is_refused(tmp_path, content):
    path = tmp_path / MANIFEST_FILE
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ManifestError) as info:
        Manifest.load(tmp_path)
    assert str(info.value) == f"{path}: field '(top level)' must be an object"


def test_from_dict_of_a_non_mapping_is_refused():
    with pytest.raises(ManifestError, match=r"^edgesbert.json: field '\(top level\)' must be an object$"):
        Manifest.from_dict([("kind", "bi-encoder")])  # type: ignore[arg-type]


@pytest.mark.parametrize("content", [b"{ not json", b'{"kind": "bi-encoder",}', b"\xff\xfe{}"])
def test_invalid_json_is_refused_naming_the_file(tmp_path, content):
    path = tmp_path / MANIFEST_FILE
    path.write_bytes(content)
    with pytest.raises(ManifestError) as info:
        Manifest.load(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{path} is not valid JSON (")
    assert message.endswith("); re-export the model")


def test_missing_file_is_refused_naming_the_file(tmp_path):
    with pytest.raises(ManifestError) as info:
        Manifest.load(tmp_path)
    assert str(info.value) == (
        f"{tmp_path / MANIFEST_FILE} not found: {tmp_path} is not an edgesbert model folder; "
        "create one with `edgesbert export MODEL --output FOLDER`"
    )
    missing = tmp_path / "nowhere"
    with pytest.raises(ManifestError, match="is not an edgesbert model folder"):
        Manifest.load(missing)
    # A folder named like the manifest is not a manifest file either.
    (tmp_path / "sub" / MANIFEST_FILE).mkdir(parents=True)
    with pytest.raises(ManifestError, match="not found"):
        Manifest.load(tmp_path / "sub")


def test_manifest_error_is_a_value_error():
    assert issubclass(ManifestError, ValueError)


def test_bool_validation_figure_is_refused(tmp_path):
    message = _refusal(tmp_path, "bi", _set("variants[0].validation", {"max_abs_diff": True}))
    assert "field 'variants[0].validation'" in message


def test_bool_static_shape_is_refused(tmp_path):
    message = _refusal(tmp_path, "bi", _set("variants[1].static_shapes", [[True, 128]]))
    assert "field 'variants[1].static_shapes'" in message
