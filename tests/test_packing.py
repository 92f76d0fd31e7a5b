"""Packed batches: rows built right, and packed graphs giving each text the vector the padded graph gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgesbert.runtime import load
from edgesbert.runtime.cpu import this_cpu
from edgesbert.runtime.packing import pack, pack_features, packed_passes, unpadded
from edgesbert.runtime.tuning import TUNED_FILE, manifest_sha256
from edgesbert.tune import ROW_TOKENS

#: random tiny models have no quality to keep: these tests compare packed with padded outputs directly
LOOSE = {"max_spearman_drop": 1.0, "min_mean_cosine": 0.0}
TEXTS = [
    "A man is playing a guitar.",
    "Short.",
    "A much longer sentence about the weather in the mountains, today and tomorrow.",  # > ModernBERT's window
    "Hi",
    "",
    "Two dogs run across a field of grass.",
] * 4


def test_texts_are_packed_first_fit_longest_first():
    ids = [[1] * 5, [2] * 3, [3] * 6, [4] * 2, [5] * 4]
    batch = pack(ids, 0, row_length=10)
    rows = batch.inputs["input_ids"]
    assert rows.shape == (2, 10)
    # longest first: 6 opens row 0, 5 opens row 1, 4 fits row 0, 3 fits row 1, 2 fills row 1
    assert rows[0].tolist() == [3] * 6 + [5] * 4
    assert rows[1].tolist() == [1] * 5 + [2] * 3 + [4] * 2
    assert batch.inputs["position_ids"][0].tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3]
    assert batch.inputs["segment_ids"][1].tolist() == [1] * 5 + [2] * 3 + [3] * 2
    assert batch.row.tolist() == [1, 1, 0, 1, 0] and batch.segment.tolist() == [0, 1, 0, 2, 1]
    output = np.arange(2 * 3).reshape(2, 3, 1)  # (rows, segments, dim)
    assert batch.vectors(output)[:, 0].tolist() == [3, 4, 0, 5, 1]  # back in the texts' order


def test_rows_are_as_long_as_the_longest_text_unless_asked_longer():
    batch = pack([[1] * 5, [2] * 3, [3] * 2, [4] * 4], 0)
    assert batch.inputs["input_ids"].tolist() == [[1] * 5, [4] * 4 + [0], [2] * 3 + [3] * 2]


def test_a_text_longer_than_a_row_makes_the_rows_the_next_multiple_of_its_length():
    batch = pack([[7] * 12, [8] * 5], 9, row_length=8)
    assert batch.inputs["input_ids"].tolist() == [[7] * 12 + [9] * 4, [8] * 5 + [9] * 11]
    assert batch.inputs["segment_ids"][1].tolist() == [1] * 5 + [0] * 11  # the tail belongs to no text


def test_aligned_texts_start_at_multiples_of_the_alignment():
    batch = pack([[1] * 5, [2] * 3, [3] * 2], 0, row_length=16, align=4)
    assert batch.inputs["segment_ids"].tolist() == [[1] * 5 + [0] * 3 + [2] * 3 + [0] + [3] * 2 + [0] * 2]
    assert batch.inputs["position_ids"][0, 8:11].tolist() == [0, 1, 2]  # each text's positions from 0
    # rows as long as the longest text: the 2 fit behind the 3 only in a row of 6 or more
    assert pack([[1] * 5, [2] * 3, [3] * 2], 0, align=4).row.tolist() == [0, 1, 2]
    assert pack([[1] * 6, [2] * 3, [3] * 2], 0, align=4).inputs["input_ids"][1].tolist() == [2, 2, 2, 0, 3, 3]
    assert pack([[1] * 3, [2] * 3], 0, row_length=7, align=4).inputs["segment_ids"].tolist() == [
        [1, 1, 1, 0, 2, 2, 2]
    ]
    assert pack([[1] * 3, [2] * 3], 0, row_length=6, align=4).row.tolist() == [0, 1]  # from 4, 2 are left


def test_onnx_runtime_starts_packed_texts_at_multiples_of_four(packed_folder, monkeypatch):
    from edgesbert.runtime import models

    batches = []

    def kept(*args, **kwargs):
        batches.append(pack_features(*args, **kwargs))
        return batches[-1]

    model = load(packed_folder("bert-mean"), variant="packed")
    monkeypatch.setattr(models, "pack_features", kept)
    texts = ["d e f g h i j k l m", "a b c", "x"]  # 12, 5 and 3 tokens: the last two share a row
    together = model.encode(texts)
    segments = batches[0].inputs["segment_ids"]
    shifted = np.pad(segments[:, :-1], ((0, 0), (1, 0)))
    rows, starts = np.nonzero((segments > 0) & (segments != shifted))
    assert len(starts) == 3 and len(set(rows)) == 2 and (starts % 4 == 0).all()
    np.testing.assert_allclose(together, np.stack([model.encode(t) for t in texts]), atol=1e-6)


def test_one_text_and_no_text():
    assert pack([np.array([5, 6])], 0).inputs["input_ids"].tolist() == [[5, 6]]  # as long as the text
    batch = pack([np.array([5, 6])], 0, row_length=4)
    assert batch.inputs["input_ids"].tolist() == [[5, 6, 0, 0]]  # the row it would share in any batch
    with pytest.raises(ValueError, match="no texts"):
        pack([], 0)


def test_passes_fill_rows_of_a_fixed_length_and_split_across_runs():
    rng = np.random.default_rng(0)
    lengths = [int(n) for n in rng.integers(3, 30, size=200)] + [40, 64, 70]  # three of a row or more
    passes = packed_passes(lengths, 32, 8, runs=2)
    placed = np.concatenate(passes)
    assert sorted(placed.tolist()) == list(range(len(lengths)))  # every text once
    assert placed[:3].tolist() == [202, 201, 200]  # the longest first, each in a row of its own
    batches = [pack([[1] * lengths[i] for i in index], 0, row_length=32) for index in passes]
    shapes = [batch.inputs["input_ids"].shape for batch in batches]
    # rows of one length a pass, the length each text gets alone: 70 -> 96, 64 and 40 -> 64, the rest 32
    assert [length for _, length in shapes[:3]] == [96, 64, 64] and {n for _, n in shapes[3:]} == {32}
    assert all(rows <= 8 for rows, _ in shapes)
    real = sum(lengths[i] for index in passes[3:] for i in index)
    assert real / sum(rows * length for rows, length in shapes[3:]) > 0.9  # random padded batches of 8: 0.62
    small = packed_passes([5, 5, 5, 5, 5, 5], 16, 8, runs=2)  # two rows of 15: one pass for each run
    assert [len(index) for index in small] == [3, 3]
    assert packed_passes([5], 16, 8, runs=4)[0].tolist() == [0]


def test_unpadded_reads_the_attention_mask():
    features = {
        "input_ids": np.array([[1, 2, 0], [0, 3, 4]]),
        "attention_mask": np.array([[1, 1, 0], [0, 1, 1]]),
    }
    assert [ids.tolist() for ids in unpadded(features)] == [[1, 2], [3, 4]]


PACKED_MODELS = {  # name: build_bi_encoder options; positions from 0 (BERT) and from padding + 1 (RoBERTa)
    "bert-mean": {"architecture": "bert", "pooling": "mean"},
    "roberta-mean": {"architecture": "roberta", "pooling": "mean"},
    "distilbert-cls-dense": {
        "architecture": "distilbert",
        "pooling": "cls",
        "dense_out": 16,
        "normalize": False,
    },
    "bert-lasttoken": {"architecture": "bert", "pooling": "lasttoken", "normalize": False},
    "bert-max-prompts": {"architecture": "bert", "pooling": "max", "prompts": {"query": "query: "}},
    # each traced through its own way of taking a mask: relative positions, local windows, a decoder
    "deberta-v2-mean": {"architecture": "deberta-v2", "pooling": "mean"},
    "modernbert-mean": {"architecture": "modernbert", "pooling": "mean"},
    "qwen3-lasttoken": {"architecture": "qwen3", "pooling": "lasttoken", "normalize": False},
}


@pytest.fixture(scope="module")
def packed_folder(tmp_path_factory):
    """Export (once per module) the tiny model called ``name`` with its packed graph."""
    from edgesbert.exporters import Tolerance, export_model
    from tests.tiny_models import build_bi_encoder

    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            folder = tmp_path_factory.mktemp(name)
            source = build_bi_encoder(folder / "source", **PACKED_MODELS[name])
            export_model(
                source, folder / "out", packed=True, tolerance=Tolerance(**LOOSE), validation_size=16
            )
            done[name] = folder / "out"
        return done[name]

    return get


@pytest.mark.parametrize("name", PACKED_MODELS)
def test_packed_equals_padded_per_text(name, packed_folder):
    from edgesbert.runtime.manifest import Manifest

    folder = packed_folder(name)
    manifest = Manifest.load(folder)
    variant = manifest.variant("packed")
    assert variant.row_length == manifest.max_seq_length
    positions = () if name.startswith("deberta") else ("position_ids",)  # DeBERTa-v3's are relative only
    assert variant.inputs == ("input_ids", *positions, "segment_ids")
    assert variant.validation["max_abs_diff"] < 1e-5 and variant.validation["batch_min_cosine"] >= 0.99999
    assert manifest.default_variant == "packed"  # the fp32 default's packed twin
    padded = load(folder, variant="fp32").encode(TEXTS, batch_size=8)
    packed = load(folder, variant="packed")
    np.testing.assert_allclose(packed.encode(TEXTS, batch_size=8), padded, atol=1e-5)
    for i in (2, 4):  # alone in its batch, or among others: the same vector
        np.testing.assert_allclose(packed.encode(TEXTS[i]), padded[i], atol=1e-5)


@pytest.mark.parametrize("hint", ["latency", "throughput"])
def test_rows_shorter_than_some_texts_give_every_text_its_padded_vector(packed_folder, hint):
    folder = packed_folder("bert-mean")
    padded = load(folder, variant="fp32").encode(TEXTS)
    packed = load(folder, variant="packed", performance_hint=hint, threads=2)
    packed.row_tokens = 8  # most texts fill a row or more: rows of their own, beside shared ones
    for batch_size in (1, 3, 32):
        np.testing.assert_allclose(packed.encode(TEXTS, batch_size=batch_size), padded, atol=1e-5)


def test_packed_runs_prompts_and_truncation_as_padded(packed_folder):
    folder = packed_folder("bert-max-prompts")
    padded, packed = load(folder, variant="fp32"), load(folder, variant="packed")
    np.testing.assert_allclose(
        packed.encode(TEXTS, prompt_name="query"), padded.encode(TEXTS, prompt_name="query"), atol=1e-5
    )
    padded.max_seq_length = packed.max_seq_length = 6
    np.testing.assert_allclose(packed.encode(TEXTS), padded.encode(TEXTS), atol=1e-5)


def test_models_that_cannot_be_packed_are_refused_before_any_work(tmp_path, monkeypatch):
    from edgesbert.errors import ExportError
    from edgesbert.exporters import export_model, packed_graph, pipeline
    from tests.tiny_models import build_bi_encoder

    monkeypatch.setattr(pipeline, "reference_outputs", lambda *a: pytest.fail("work began"))
    monkeypatch.setattr(packed_graph, "PACKABLE", ("bert",))  # every tiny architecture packs now
    deberta = build_bi_encoder(tmp_path / "deberta", architecture="deberta-v2")
    with pytest.raises(ExportError, match=r"deberta-v2 models cannot be packed yet .*without --packed"):
        export_model(deberta, tmp_path / "out", packed=True)
    with pytest.raises(ExportError, match="--static-shapes do not go together"):
        export_model(deberta, tmp_path / "out", packed=True, static_shapes=[(1, 128)])
    assert not (tmp_path / "out").exists()


def test_a_negative_row_length_is_refused(packed_folder, tmp_path):
    import shutil

    from edgesbert.errors import ManifestError
    from edgesbert.runtime.manifest import Manifest

    folder = tmp_path / "copy"
    shutil.copytree(packed_folder("bert-mean"), folder)
    data = json.loads((folder / "edgesbert.json").read_text())
    next(v for v in data["variants"] if v["name"] == "packed")["row_length"] = -1
    (folder / "edgesbert.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="row_length"):
        Manifest.load(folder)


@pytest.mark.parametrize("architecture", ["bert", "deberta-v2", "modernbert", "qwen3"])
def test_openvino_runs_the_packed_graph_as_its_padded_ir(architecture, tmp_path):
    pytest.importorskip("openvino")
    from edgesbert.exporters import Tolerance, export_model
    from tests.tiny_models import build_bi_encoder

    pooling = "lasttoken" if architecture == "qwen3" else "mean"
    source = build_bi_encoder(tmp_path / "source", architecture=architecture, pooling=pooling)
    manifest = export_model(
        source,
        tmp_path / "out",
        backend="openvino",
        packed=True,
        tolerance=Tolerance(**LOOSE),
        validation_size=16,
    )
    assert [v.name for v in manifest.variants] == ["openvino", "openvino-packed"]
    assert manifest.variant("openvino-packed").row_length == manifest.max_seq_length
    assert manifest.default_variant == "openvino-packed"
    assert not (tmp_path / "out" / "onnx").exists()  # the packed ONNX graph it came from is gone
    padded = load(tmp_path / "out", variant="openvino").encode(TEXTS, batch_size=8)
    packed = load(tmp_path / "out", variant="openvino-packed", performance_hint="throughput", threads=2)
    assert packed.row_tokens == min(64, manifest.max_seq_length)  # full rows of one length: few shapes
    for batch_size in (2, 8):  # passes of 2 rows (several), of 8 (one per run)
        np.testing.assert_allclose(packed.encode(TEXTS, batch_size=batch_size), padded, atol=1e-5)
    choice = {"variant": "openvino-packed", "performance_hint": None, "row_tokens": 0}
    machines = {this_cpu().key: {"cpu": "test CPU", "measured_at": "now", "choice": choice}}
    record = {"format": 1, "manifest_sha256": manifest_sha256(tmp_path / "out"), "machines": machines}
    (tmp_path / "out" / TUNED_FILE).write_text(json.dumps(record))
    tuned = load(tmp_path / "out")  # rows of each pass's longest text would follow the batch: not taken
    assert tuned.tuned is not None and tuned.row_tokens == min(64, manifest.max_seq_length)


def test_the_packed_graph_gets_no_tokenizer_twin():
    from edgesbert.exporters.packed_graph import PackedGraph
    from edgesbert.exporters.plans import onnx_steps, with_packed, with_tokenizer
    from edgesbert.exporters.text_graphs import WithTokenizer

    steps = with_tokenizer(with_packed(onnx_steps("O2", ["int8"]), "onnx"))
    assert isinstance(steps[1], PackedGraph)
    assert [getattr(step, "packed", None) for step in steps[3:5]] == [False, True]  # int8, its packed twin
    twins = [step.source for step in steps if isinstance(step, WithTokenizer)]
    assert twins == [0, 2, 3]  # fp32, O2 and int8; not the packed graph (1) nor its int8 (4)


def test_tune_times_the_packed_graph_beside_the_padded_ones(packed_folder, tmp_path):
    import shutil

    from edgesbert.tune import tune

    folder = tmp_path / "copy"
    shutil.copytree(packed_folder("bert-mean"), folder)
    result = tune(folder, seconds=0.2, threads=1)
    packed = [f for f in result.figures if f.variant == "packed"]
    assert packed and all(f.error is None and f.sentences_per_s > 0 for f in packed)
    assert all(f.unsorted_per_s > 0 for f in result.figures)  # server-like batches are timed too
    limit = load(folder, variant="packed").max_seq_length
    assert sorted(f.row_tokens for f in packed) == sorted(
        2 * [r for r in ROW_TOKENS if r <= limit]
    )  # onnx: 0 too
    assert all(f.row_tokens is None for f in result.figures if f.variant != "packed")  # padded: no rows
    chosen = json.loads((folder / TUNED_FILE).read_text())["machines"][this_cpu().key]["choice"]
    assert chosen["row_tokens"] == result.choice.row_tokens
    if result.choice.variant == "packed":  # load() fills rows of the length that ran fastest here
        assert load(folder).row_tokens == result.choice.row_tokens


def test_a_tuned_row_length_applies_to_the_packed_variant_only(packed_folder, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(packed_folder("bert-mean"), folder)
    for variant, rows, expected in (("packed", 16, 16), ("packed", 0, 0), ("fp32", 16, 0)):
        choice = {"variant": variant, "performance_hint": None, "row_tokens": rows}
        machines = {this_cpu().key: {"cpu": "test CPU", "measured_at": "now", "choice": choice}}
        record = {"format": 1, "manifest_sha256": manifest_sha256(folder), "machines": machines}
        (folder / TUNED_FILE).write_text(json.dumps(record))
        model = load(folder)
        assert (model.variant.name, model.row_tokens) == (variant, expected)
    padded = load(folder, variant="fp32").encode(TEXTS)
    np.testing.assert_allclose(load(folder, variant="packed").encode(TEXTS), padded, atol=1e-5)


def test_row_tokens_takes_a_row_length_the_graph_can_run(packed_folder):
    folder = packed_folder("bert-mean")
    packed, padded = load(folder, variant="packed"), load(folder, variant="fp32")
    limit = packed.max_seq_length
    packed.row_tokens = limit
    with pytest.raises(ValueError, match=rf"row_tokens must be 0 or 1..{limit} .*got {limit + 1}"):
        packed.row_tokens = limit + 1
    with pytest.raises(ValueError, match="got -1"):
        packed.row_tokens = -1
    with pytest.raises(TypeError, match="must be an int"):
        packed.row_tokens = 64.0
    with pytest.raises(ValueError, match=r"'fp32' pads its batches.*--packed"):
        padded.row_tokens = 64
    padded.row_tokens = 0
    assert (packed.row_tokens, padded.row_tokens) == (limit, 0)


PAIRS = [
    ("How tall is the tower?", "It is 300 metres tall, and it was built in 1889."),
    ("Who?", "Me."),
    ("What is the capital of France, and since when has it been?", "Paris, since the middle ages."),
    ("q", ""),
    ("Another question", "Another answer that is a bit longer than the question."),
] * 3

#: cross-encoders, with token types (bert, electra) and without; heads on a pooler (bert), on token 0
#: (roberta, electra) and after a pre-classifier (distilbert). MPNet is left out here: its embeddings take
#: id 1 as padding, which the tiny models' tokenizer gives [UNK] (real MPNet tokenizers pad with 1).
PACKED_CROSS_ENCODERS = {
    "bert": 1, "roberta": 3, "distilbert": 1, "electra": 2, "deberta-v2": 1, "modernbert": 2, "qwen3": 1,
}  # fmt: skip


@pytest.mark.parametrize("architecture", PACKED_CROSS_ENCODERS)
def test_packed_cross_encoders_score_each_pair_as_padded(architecture, tmp_path):
    from edgesbert.exporters import Tolerance, export_model
    from tests.tiny_models import build_cross_encoder

    labels = PACKED_CROSS_ENCODERS[architecture]
    source = build_cross_encoder(tmp_path / "source", architecture=architecture, num_labels=labels)
    manifest = export_model(
        source, tmp_path / "out", packed=True, tolerance=Tolerance(**LOOSE), validation_size=16
    )
    variant = manifest.variant("packed")
    assert variant.outputs == ("segment_logits",) and manifest.default_variant == "packed"
    assert ("token_type_ids" in variant.inputs) == (architecture in ("bert", "electra"))
    assert variant.validation["max_abs_diff"] < 1e-5 and variant.validation["batch_max_score_diff"] < 1e-5
    padded, packed = load(tmp_path / "out", variant="fp32"), load(tmp_path / "out", variant="packed")
    expected = padded.predict(PAIRS, batch_size=4)
    assert expected.shape == ((len(PAIRS),) if labels == 1 else (len(PAIRS), labels))
    np.testing.assert_allclose(packed.predict(PAIRS, batch_size=4), expected, atol=1e-5)
    np.testing.assert_allclose(packed.predict([PAIRS[2]])[0], expected[2], atol=1e-5)  # alone: the same
    if labels == 1:
        query, documents = "How tall is the tower?", [document for _, document in PAIRS[:5]]
        ranked, expected_ranking = packed.rank(query, documents), padded.rank(query, documents)
        assert [r.corpus_id for r in ranked] == [r.corpus_id for r in expected_ranking]
        np.testing.assert_allclose([r.score for r in ranked], [r.score for r in expected_ranking], atol=1e-5)


def test_pairs_are_packed_with_their_token_types():
    batch = pack([[1, 2, 3], [4, 5], [6]], 0, [[0, 0, 1], [0, 1], [1]], row_length=4)
    assert batch.inputs["token_type_ids"].tolist() == [[0, 0, 1, 1], [0, 1, 0, 0]]
    assert batch.inputs["segment_ids"].tolist() == [[1, 1, 1, 2], [1, 1, 0, 0]]


def test_texts_filling_less_than_a_row_still_get_a_whole_row():
    batch = pack([[1, 2, 3], [4, 5]], 0, row_length=8)  # the row length they get in any batch
    assert batch.inputs["input_ids"].tolist() == [[1, 2, 3, 4, 5, 0, 0, 0]]


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_int8_variants_have_packed_twins_as_steady_as_the_padded_ones(backend, tmp_path):
    if backend == "openvino":
        pytest.importorskip("nncf")
    from edgesbert.exporters import Tolerance, export_model
    from tests.tiny_models import build_bi_encoder

    source = build_bi_encoder(tmp_path / "source", architecture="bert", pooling="mean")
    quantize, pairs = {
        "onnx": (["int8-static"], ("int8-static", "packed-int8-static")),
        "openvino": (["int8"], ("openvino-int8", "openvino-packed-int8")),
    }[backend]
    manifest = export_model(
        source,
        tmp_path / "out",
        backend=backend,
        quantize=quantize,
        packed=True,
        tolerance=Tolerance(**LOOSE),
        validation_size=16,
    )
    padded_name, packed_name = pairs
    padded_variant, packed_variant = manifest.variant(padded_name), manifest.variant(packed_name)
    assert packed_variant.row_length == manifest.max_seq_length and packed_variant.precision.value == "int8"
    assert manifest.default_variant == packed_name  # the padded default's packed twin
    for key in ("mean_cosine", "min_cosine"):  # as close to the reference as the padded int8
        assert packed_variant.validation[key] >= padded_variant.validation[key] - 1e-4
    # static int8 keeps each text's vector whatever its neighbours (OpenVINO: the pooling stays float)
    assert packed_variant.validation["batch_min_cosine"] >= 0.99999
    packed = load(tmp_path / "out", variant=packed_name)
    together = packed.encode(TEXTS, batch_size=16)
    for i in (2, 5):
        np.testing.assert_allclose(packed.encode(TEXTS[i]), together[i], atol=1e-5)
    padded = load(tmp_path / "out", variant=padded_name).encode(TEXTS, batch_size=16)
    assert float((padded * together).sum(axis=1).min()) > 0.999


def test_openvino_int8_keeps_products_of_two_activations_float(tmp_path):
    pytest.importorskip("openvino")
    import openvino as ov

    from edgesbert.exporters.openvino_ir import activation_products

    weights = ov.opset13.constant(np.ones((4, 4), dtype=np.float32))
    x = ov.opset13.parameter([2, 4], ov.Type.f32, name="x")
    y = ov.opset13.parameter([4, 2], ov.Type.f32, name="y")
    with_weight = ov.opset13.matmul(x, ov.opset13.convert(weights, "f32"), False, False)
    with_weight.set_friendly_name("weighted")
    product = ov.opset13.matmul(with_weight, y, False, False)
    product.set_friendly_name("pooling")
    assert activation_products(ov.Model([product], [x, y])) == ["pooling"]


def test_info_says_whether_a_folder_packs_and_why_not():
    from edgesbert.runtime.packing import packing_note

    assert packing_note("bert", ["packed", "packed-int8"], 128).startswith(
        "packed, packed-int8: texts side by"
    )
    assert "export --packed adds" in packing_note("bert", [], 0)
    assert packing_note("t5", [], 0) == "none: t5 models cannot be packed yet, padded batches only"
    assert "export --packed adds" in packing_note("qwen3", [], 0)


def test_a_packed_variant_that_moves_with_its_place_in_its_row_is_recorded_batch_dependent(
    packed_folder, monkeypatch
):
    from edgesbert.exporters.data_sets import stsb_pairs
    from edgesbert.exporters.validation import batch_figures
    from edgesbert.runtime.packing import PackedBatch

    model = load(packed_folder("bert-mean"), variant="packed")
    data = stsb_pairs(16)
    assert batch_figures(model, data)["batch_min_cosine"] >= 0.99999
    vectors = PackedBatch.vectors

    def behind_another(self: PackedBatch, output: np.ndarray) -> np.ndarray:
        moved = vectors(self, output).copy()
        moved[self.segment > 0, 0] += 0.5  # as int8 rounding moves a text computed behind others
        return moved

    monkeypatch.setattr(PackedBatch, "vectors", behind_another)
    assert batch_figures(model, data)["batch_min_cosine"] < 0.99
    assert model.row_tokens == 0  # the probe's rows were given back
