"""Static variants (``export --static``): a distilled token table run with numpy and tokenizers (issue 31).

One tiny export with prompts (no normalization, dot product) serves most tests; distillation itself is checked
on the CLS-pooled model with a Dense layer too. model2vec and sentence-transformers loading the same folders
are tested in tests/interop/test_static_peers.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from edgesbert.cli import main
from edgesbert.errors import DeviceNotAvailableError, ExportError
from edgesbert.runtime import BiEncoder, load, quantize_embeddings
from edgesbert.runtime.manifest import Manifest
from edgesbert.runtime.safetensors_numpy import read_safetensors, write_safetensors
from edgesbert.runtime.similarity import normalize
from edgesbert.runtime.tuning import tunable

TEXTS = [
    "A man is playing a guitar.",
    "A woman is slicing an onion.",
    "The weather is lovely today, isn't it?",
    "",
    "zebra",
    "Three dogs run across a field of very tall grass while the sun sets behind the distant hills.",
]
DIMENSIONS = 16


@pytest.fixture(scope="module")
def source(tiny_bi_encoder_folder) -> Path:
    return tiny_bi_encoder_folder("bert-sqrt-prompts")


@pytest.fixture(scope="module")
def folder(source, tmp_path_factory) -> Path:
    from edgesbert.exporters import export_model

    output = tmp_path_factory.mktemp("static") / "prompts"
    export_model(source, output, validation_size=64, static=True, static_dimensions=DIMENSIONS)
    return output


@pytest.fixture(scope="module")
def model(folder) -> BiEncoder:
    loaded = load(folder, variant="static")
    assert isinstance(loaded, BiEncoder)
    return loaded


def by_hand(folder: Path, variant: str, texts: list[str]) -> np.ndarray:
    """What model2vec computes: the mean of the rows of a text's tokens (no special tokens), unit length."""
    tensors = read_safetensors(folder / variant / "model.safetensors")
    rows = tensors["embeddings"].astype(np.float32) * tensors.get("weights", np.ones(1, np.float32))[:, None]
    tokenizer = Tokenizer.from_file(str(folder / variant / "tokenizer.json"))
    sums = [rows[e.ids].sum(axis=0) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    return normalize(np.stack(sums).astype(np.float32))


def test_distillation_is_deterministic(source, folder):
    from edgesbert.exporters import load_reference
    from edgesbert.exporters.static_distill import distill

    reference = load_reference(source)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    first, second = distill(reference, tokenizer, DIMENSIONS), distill(reference, tokenizer, DIMENSIONS)
    assert np.array_equal(first.rows, second.rows)
    assert np.array_equal(first.rows, read_safetensors(folder / "static" / "model.safetensors")["embeddings"])
    specials = [i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special]
    assert specials and not first.rows[specials].any()  # [CLS], [SEP], [PAD]... add nothing


@pytest.mark.parametrize("name", ["distilbert-cls-dense", "bert-sqrt-prompts"])
def test_token_vectors_are_the_models_own_embeddings(tiny_bi_encoder_folder, name):
    """CLS pooling, Dense layers, normalization and the default prompt, as ``encode`` applies them."""
    from edgesbert.exporters import load_reference
    from edgesbert.exporters.static_distill import token_vectors

    reference = load_reference(tiny_bi_encoder_folder(name))
    tokenizer = Tokenizer.from_file(str(tiny_bi_encoder_folder(name) / "tokenizer.json"))
    words = ["man", "guitar", "the"]
    ids = np.array([tokenizer.token_to_id(w) for w in words])
    assert all(
        tokenizer.encode(w, add_special_tokens=False).ids == [i] for w, i in zip(words, ids, strict=True)
    )
    vectors = token_vectors(reference, tokenizer, ids)  # before the model's normalization, if it has one
    expected = reference.encode(words)
    np.testing.assert_allclose(
        normalize(vectors) if reference.layout.normalize else vectors, expected, atol=1e-5
    )


def test_the_runtime_sums_the_rows_of_the_tokens(folder, model):
    np.testing.assert_allclose(model.encode(TEXTS, prompt=""), by_hand(folder, "static", TEXTS), atol=1e-6)
    int8 = load(folder, variant="static-int8").encode(TEXTS, prompt="")
    np.testing.assert_allclose(int8, by_hand(folder, "static-int8", TEXTS), atol=1e-6)
    assert (normalize(int8[:3]) * normalize(model.encode(TEXTS[:3], prompt=""))).sum(axis=1).min() > 0.999
    assert not model.encode("", prompt="").any()  # no tokens: a zero vector, as in model2vec


def test_every_encode_option(model):
    plain = model.encode(TEXTS, prompt="")
    assert plain.shape == (len(TEXTS), DIMENSIONS) and model.embedding_dimension == DIMENSIONS
    assert model.encode(TEXTS[0], prompt="").shape == (DIMENSIONS,)
    assert model.encode([]).shape == (0, DIMENSIONS)
    for size in (1, 2, 64):
        np.testing.assert_allclose(model.encode(TEXTS, batch_size=size, prompt=""), plain, atol=1e-7)
    # prompts: the default ("query"), by name, by text, and encode_document's
    np.testing.assert_allclose(model.encode(TEXTS), model.encode(TEXTS, prompt="query: "), atol=1e-7)
    passage = model.encode(TEXTS, prompt_name="passage")
    np.testing.assert_allclose(passage, model.encode(["passage: " + t for t in TEXTS], prompt=""), atol=1e-7)
    np.testing.assert_allclose(model.encode_document(TEXTS), passage, atol=1e-7)
    assert not np.allclose(passage, plain)
    truncated = model.encode(TEXTS, truncate_dim=4, normalize_embeddings=True, prompt="")
    np.testing.assert_allclose(truncated, normalize(plain[:, :4]), atol=1e-6)
    for precision in ("int8", "binary", "ubinary"):
        expected = quantize_embeddings(plain, precision)
        np.testing.assert_array_equal(model.encode(TEXTS, precision=precision, prompt=""), expected)
    scores = model.similarity(plain, plain)
    assert scores.shape == (len(TEXTS), len(TEXTS))
    assert model.rank(TEXTS[0], TEXTS[:3])[0].corpus_id == 0


def test_max_seq_length_truncates_the_tokens_summed(model):
    long = TEXTS[-1]
    full = model.encode(long, prompt="")
    model.max_seq_length = 5  # [CLS], four tokens, [SEP]
    try:
        cut = model.encode(long, prompt="")
        first_four = model.tokenizer.tokens([long], add_special_tokens=False)[0][:4]
        np.testing.assert_allclose(cut, model.encode(long[: first_four[-1].stop], prompt=""), atol=1e-6)
        assert not np.allclose(cut, full)
    finally:
        model.max_seq_length = model.tokenizer.limit


def test_validated_recorded_and_never_the_default(folder, capsys):
    manifest = Manifest.load(folder)
    assert manifest.default_variant == "fp32"
    for name in ("static", "static-int8"):
        variant = manifest.variant(name)
        assert variant.static and variant.dimension == DIMENSIONS and not tunable(variant)
        figures = variant.validation
        wanted = ("spearman", "reference_spearman", "mean_cosine", "texts_per_second", "batch_min_cosine")
        assert set(wanted) <= set(figures), figures
        assert figures["reference_spearman"] == manifest.variant("fp32").validation["spearman"]
        assert figures["batch_min_cosine"] > 0.99999  # a table lookup does not depend on the batch
    assert manifest.variant("static-int8").precision.value == "int8"
    assert main(["info", str(folder)]) == 0
    shown = capsys.readouterr().out
    assert "static-int8" in shown and f"{manifest.variant('static').validation['spearman']:.4f}" in shown


def test_model2vec_layout(folder):
    config = json.loads((folder / "static" / "config.json").read_text())
    assert config["model_type"] == "model2vec" and config["normalize"] and config["hidden_dim"] == DIMENSIONS
    assert json.loads((folder / "static" / "modules.json").read_text())[0]["path"] == "."
    prompts = json.loads((folder / "static" / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts == {"query": "query: ", "passage": "passage: "}
    tensors = read_safetensors(folder / "static-int8" / "model.safetensors")
    assert tensors["embeddings"].dtype == np.int8 and tensors["weights"].dtype == np.float32


def test_safetensors_round_trip(tmp_path):
    tensors = {"b": np.arange(7, dtype=np.int8), "a": np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)}
    write_safetensors(tmp_path / "x.safetensors", tensors)
    write_safetensors(tmp_path / "y.safetensors", dict(reversed(tensors.items())))
    assert (tmp_path / "x.safetensors").read_bytes() == (tmp_path / "y.safetensors").read_bytes()
    read = read_safetensors(tmp_path / "x.safetensors")
    assert all(np.array_equal(read[k], v) and read[k].dtype == v.dtype for k, v in tensors.items())
    from safetensors.numpy import load_file  # the reference implementation reads it alike

    assert all(np.array_equal(load_file(tmp_path / "x.safetensors")[k], v) for k, v in tensors.items())


BLOCKED_RUN = """
import importlib.abc, json, sys

attempts = []


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("onnxruntime", "openvino", "torch", "transformers"):
            attempts.append(name)
            raise ImportError(f"{name} blocked by test_static")


sys.meta_path.insert(0, Blocker())
from edgesbert.runtime import load

model = load(sys.argv[1], variant=sys.argv[2])
print(json.dumps({"embeddings": model.encode(json.loads(sys.argv[3])).tolist(), "attempts": attempts}))
"""


@pytest.mark.parametrize("variant", ["static", "static-int8"])
def test_runs_where_onnxruntime_and_openvino_cannot_load(folder, model, variant):
    run = [sys.executable, "-c", BLOCKED_RUN, str(folder), variant, json.dumps(TEXTS)]
    result = subprocess.run(run, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["attempts"] == []
    expected = load(folder, variant=variant).encode(TEXTS)
    np.testing.assert_allclose(np.array(found["embeddings"], dtype=np.float32), expected, atol=1e-7)


def test_runs_on_the_cpu_only(folder):
    with pytest.raises(DeviceNotAvailableError, match="CPU"):
        load(folder, variant="static", device="gpu")
    assert load(folder, variant="static", device="auto").encode("x").shape == (DIMENSIONS,)


def test_a_cross_encoder_has_no_static_variant(tiny_cross_encoder_folder, tmp_path, capsys):
    code = main(["export", str(tiny_cross_encoder_folder()), "--static", "-o", str(tmp_path / "out")])
    assert code == 1 and "--static needs a bi-encoder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    from edgesbert.exporters import export_model

    with pytest.raises(ExportError, match="retrieves for it"):
        export_model(tiny_cross_encoder_folder(), tmp_path / "api", static=True)


def test_cli_encodes_with_the_static_variant(folder, model, capsys):
    assert main(["encode", str(folder), "--variant", "static", "--json", TEXTS[0]]) == 0
    printed = np.array(json.loads(capsys.readouterr().out)["embeddings"], dtype=np.float32).reshape(-1)
    np.testing.assert_allclose(printed, model.encode(TEXTS[0]), atol=1e-6)


def test_served(folder, model):
    pytest.importorskip("fastapi")
    from tests.serve.conftest import server_in_thread, settings_for

    with server_in_thread(settings_for({"static": folder}, variant="static")) as server:
        reply = server.post("/embed", {"inputs": TEXTS[:3]})
    assert reply.status == 200, reply.body
    np.testing.assert_allclose(np.array(reply.json(), dtype=np.float32), model.encode(TEXTS[:3]), atol=1e-6)


def test_bulk_job(folder, model, tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from edgesbert.bulk import embed_corpus

    corpus = tmp_path / "texts.txt"
    corpus.write_text("".join(t + "\n" for t in TEXTS if t), "utf-8")
    embed_corpus(folder, corpus, tmp_path / "out.parquet", variant="static", progress=False)
    rows = np.array(pq.read_table(tmp_path / "out.parquet")["embedding"].to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(rows, model.encode([t for t in TEXTS if t]), atol=1e-6)


def test_desktop_engine_runs_it_only_by_name(folder, model):
    from examples.desktop.engine import Engine

    default = Engine(folder)
    assert default.encoder.variant.name == "fp32"  # an int8 graph if the folder had one; never the table
    default.close()
    engine = Engine(folder, variant="static")
    try:
        assert engine.dimension == DIMENSIONS and engine.model_id.endswith(":static")
        expected = model.encode_document(TEXTS[:2], normalize_embeddings=True)
        np.testing.assert_allclose(engine.embed(TEXTS[:2]), expected, atol=1e-6)
    finally:
        engine.close()
