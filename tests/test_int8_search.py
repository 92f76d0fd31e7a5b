"""Accuracy-aware int8: the search over recipes, the sensitivity ranking, and what the manifest records.

The search is driven here by a fake int8 step whose figures are set per recipe, so each path (stop at the
target, keep the best within the tolerance, fail with the best reached) is checked exactly; the ranking
runs on a real ONNX graph with one outlier activation; the tiny-model exports run the real steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

from edgesbert.errors import ValidationFailedError
from edgesbert.exporters.context import ExportContext
from edgesbert.exporters.int8_search import Int8Recipe, search, sensitivity
from edgesbert.exporters.validation import Tolerance
from edgesbert.runtime.manifest import GraphVariant, Precision

SHA = "0" * 64
RANKED = [(f"/layer.{i}/MatMul", 1.0 / (i + 1)) for i in range(10)]


@dataclass(frozen=True)
class FakeInt8:
    """Writes a file holding its recipe; the search sees the figures ``drops`` gives that recipe."""

    recipe: Int8Recipe = field(default_factory=Int8Recipe)
    packed: bool = False

    def alternatives(self) -> tuple[Int8Recipe, ...]:
        return (replace(self.recipe, smooth_quant=0.95),)

    def calibration_texts(self, ctx: ExportContext) -> list:
        return ["a text"]

    def already_float(self, ctx: ExportContext) -> frozenset[str]:
        return frozenset({"/layer.0/MatMul"})  # ranked first, but its own recipe keeps it float already

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        (ctx.folder / "model_int8.onnx").write_text(repr(self.recipe))
        recipe = {"quantize": "int8-static"}
        inputs, outputs = ("input_ids",), ("sentence_embedding",)
        return GraphVariant(
            "int8", "model_int8.onnx", "onnxruntime", Precision.INT8, inputs, outputs, SHA, recipe=recipe
        )


def figures(drop: float, cosine: float, speed: float) -> dict[str, float]:
    return {"spearman": 0.82 - drop, "reference_spearman": 0.82, "mean_cosine": cosine, "min_cosine": 0.9,
            "max_abs_diff": 0.1, "texts_per_second": speed}  # fmt: skip


def run_search(tmp_path: Path, monkeypatch, drops: dict[tuple[float | None, int], tuple[float, float]]):
    """Search with the fake step; ``drops`` maps (SmoothQuant, MatMuls kept float) to (drop, cosine)."""
    from edgesbert.exporters import int8_search

    monkeypatch.setattr(int8_search, "sensitivity", lambda graph, batches: RANKED)
    ctx = ExportContext.__new__(ExportContext)
    ctx.folder, ctx.tolerance, ctx.variants = tmp_path, Tolerance(), []
    ctx.variant = lambda name: GraphVariant("fp32", "model.onnx", "onnxruntime", Precision.FP32, (), (), SHA)
    ctx.graph_feed = lambda source, texts: {"input_ids": np.zeros((len(texts), 2), dtype=np.int64)}
    tried = []

    def measure(variant: GraphVariant) -> dict[str, float]:
        recipe = eval((tmp_path / variant.file).read_text(), {"Int8Recipe": Int8Recipe})
        tried.append(recipe)
        key = (recipe.smooth_quant, len(recipe.keep_float))
        return figures(*drops[key], speed=1000 - 20 * len(recipe.keep_float))

    def run(step, ctx):
        return step(ctx)

    return search(FakeInt8(), ctx, measure, run), tried


def test_the_search_stops_at_the_first_recipe_within_its_target(tmp_path, monkeypatch):
    drops = {(None, 0): (0.002, 0.99), (0.95, 0): (0.002, 0.996)}
    (variant, found), tried = run_search(tmp_path, monkeypatch, drops)
    # 0.2 pt <= 0.25 pt and mean cosine >= 0.995 (a quarter and a twentieth of the default tolerance)
    assert [r.smooth_quant for r in tried] == [None, 0.95]
    assert found["spearman"] == pytest.approx(0.818)
    assert variant.recipe["recipes_tried"] == 2 and "kept_float_matmuls" not in variant.recipe
    assert (tmp_path / "model_int8.onnx").read_text() == repr(Int8Recipe(smooth_quant=0.95))
    assert not (tmp_path / ".attempts").exists()


def test_the_search_keeps_the_most_sensitive_matmuls_float_and_records_them(tmp_path, monkeypatch):
    drops = {
        (None, 0): (0.008, 0.990),
        (0.95, 0): (0.02, 0.993),  # more faithful, but out of the Spearman tolerance: not the base
        (None, 1): (0.006, 0.992),
        (None, 2): (0.004, 0.994),
        (None, 4): (0.0035, 0.993),
    }
    (variant, found), tried = run_search(tmp_path, monkeypatch, drops)
    # ranked without the MatMul the step keeps float itself; shares 0.1, 0.25, 0.5 of the 9 others: 1, 2, 4
    assert [len(r.keep_float) for r in tried] == [0, 0, 1, 2, 4]
    assert all(r.smooth_quant is None for r in tried[2:])  # on top of the better of the first two
    assert tried[-1].keep_float == tuple(name for name, _ in RANKED[1:5])
    # none reached the target: the most faithful within the tolerance is kept, with its own file
    assert found["mean_cosine"] == 0.994 and found["spearman"] == pytest.approx(0.816)
    assert (tmp_path / "model_int8.onnx").read_text() == repr(tried[3])
    assert variant.recipe["kept_float_matmuls"] == 2
    assert variant.recipe["kept_float_names"] == "/layer.1/MatMul, /layer.2/MatMul"
    assert "calibration texts" in variant.recipe["kept_float_why"]
    assert variant.recipe["speed_vs_first_recipe"] == pytest.approx(0.96)
    assert variant.recipe["recipes_tried"] == 5
    assert not (tmp_path / ".attempts").exists()


def test_the_search_fails_with_the_best_figures_reached_and_removes_the_files(tmp_path, monkeypatch):
    drops = {
        (None, 0): (0.03, 0.95),
        (0.95, 0): (0.02, 0.96),
        (0.95, 1): (0.015, 0.97),
        (0.95, 2): (0.012, 0.98),
        (0.95, 4): (0.011, 0.975),
    }
    with pytest.raises(ValidationFailedError) as failure:
        run_search(tmp_path, monkeypatch, drops)
    message = str(failure.value)
    assert "after 5 recipes" in message
    assert "STSb Spearman drop 0.012 > 0.01 (--max-spearman-drop)" in message
    assert "SmoothQuant 0.95, 2 MatMuls kept float" in message  # the best reached
    assert "--max-spearman-drop 0.012 (now 0.01)" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_sensitivity_ranks_the_matmul_fed_by_an_outlier_channel_first(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    hidden = 8
    gain = np.ones(hidden, dtype=np.float32)
    gain[3] = 300.0  # one outlier channel, as after a LayerNorm: int8 loses the small ones
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["x"], name="embed"),
        helper.make_node("MatMul", ["x", "w1"], ["y"], name="plain/MatMul"),
        helper.make_node("Mul", ["y", "gain"], ["z"], name="scale"),
        helper.make_node("MatMul", ["z", "w2"], ["out"], name="outlier/MatMul"),
    ]
    weights = [
        numpy_helper.from_array(rng.normal(size=(50, hidden)).astype(np.float32), "table"),
        numpy_helper.from_array(rng.normal(size=(hidden, hidden)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(size=(hidden, hidden)).astype(np.float32), "w2"),
        numpy_helper.from_array(gain, "gain"),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", "s", hidden])],
        weights,
    )  # fmt: skip
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    ids = rng.integers(0, 50, size=(4, 6))
    mask = np.ones_like(ids)
    mask[:, 4:] = 0  # padding does not count
    ranked = sensitivity(path, [{"input_ids": ids, "attention_mask": mask}])
    assert [name for name, _ in ranked] == ["outlier/MatMul", "plain/MatMul"]
    assert 0 < ranked[1][1] < 1e-4 < ranked[0][1] < 1
