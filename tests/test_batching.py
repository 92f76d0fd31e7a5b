"""Batches run one by one or side by side: same rows, same order, same numbers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgesbert.runtime.batching import map_concurrently


def rows_of(batch: list[int]) -> np.ndarray:
    time.sleep(0.001 * (batch[0] % 3))  # finish out of order
    return np.array(batch, dtype=np.float32)[:, None]


@pytest.mark.parametrize("workers", [1, 2, 3, 5])
def test_map_concurrently_keeps_batches_whole_and_in_order(workers):
    batches = [
        list(range(start, start + size)) for start, size in [(0, 7), (7, 1), (8, 2), (10, 32), (42, 3)]
    ]
    with ThreadPoolExecutor(workers) as pool:
        results = list(map_concurrently(rows_of, batches, pool, workers))
    assert [r[:, 0].tolist() for r in results] == batches


def test_map_concurrently_splits_one_batch_across_workers():
    seen: list[tuple[str, int]] = []

    def record(batch: list[int]) -> np.ndarray:
        seen.append((threading.current_thread().name, len(batch)))
        time.sleep(0.02)
        return np.zeros((len(batch), 1), dtype=np.float32)

    with ThreadPoolExecutor(2) as pool:
        (result,) = map_concurrently(record, [list(range(9))], pool, 2)
    assert result.shape == (9, 1)
    assert sorted(size for _, size in seen) == [4, 5]
    assert len({name for name, _ in seen}) == 2


def test_map_concurrently_passes_errors_on():
    def fail(batch: list[int]) -> np.ndarray:
        raise ValueError("bad batch")

    with ThreadPoolExecutor(2) as pool, pytest.raises(ValueError, match="bad batch"):
        list(map_concurrently(fail, [[1, 2], [3]], pool, 2))


@pytest.fixture(scope="module")
def fp32_and_int8(tmp_path_factory, tiny_bi_encoder_folder):
    from edgesbert.exporters import Tolerance, export_model

    output = tmp_path_factory.mktemp("batching") / "bert-mean"
    loose = Tolerance(max_spearman_drop=1.0, min_mean_cosine=0.0)
    export_model(
        tiny_bi_encoder_folder("bert-mean"), output, quantize=["int8"], tolerance=loose, validation_size=32
    )
    return output


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_throughput_hint_gives_the_same_embeddings(fp32_and_int8, stsb_sentences, variant):
    from edgesbert.runtime import load

    folder, sentences = fp32_and_int8, stsb_sentences[:192]  # whole batches of 16
    # two workers cut each batch of 16 in two: the batches of 8 a sequential run makes (dynamic int8
    # scales depend on the batch, so only the same batches give the same numbers)
    expected = load(folder, variant=variant, threads=2).encode(sentences, batch_size=8)
    model = load(folder, variant=variant, threads=2, performance_hint="throughput")
    assert model._backend.concurrent_runs == 2
    np.testing.assert_allclose(model.encode(sentences, batch_size=16), expected, atol=1e-6)


def test_throughput_hint_gives_the_same_scores(exported, stsb_sentences):
    from edgesbert.runtime import load

    folder = exported("bert-1", kind="cross-encoder")
    pairs = list(zip(stsb_sentences[::2], stsb_sentences[1::2], strict=True))
    expected = load(folder, threads=2).predict(pairs, batch_size=8)
    model = load(folder, threads=2, performance_hint="throughput")
    np.testing.assert_allclose(model.predict(pairs, batch_size=8), expected, atol=1e-5)
    query, documents = pairs[0][0], [b for _, b in pairs]
    scores = model.predict([(query, d) for d in documents])
    ranked = model.rank(query, documents)
    assert [r.corpus_id for r in ranked] == np.argsort(-scores, kind="stable").tolist()


def test_progress_bar_counts_batches_and_keeps_the_results(exported, stsb_sentences, capsys):
    from edgesbert.runtime import load

    model = load(exported("bert-mean"))
    quiet = model.encode(stsb_sentences, batch_size=50)
    assert "Batches" not in capsys.readouterr().err
    np.testing.assert_array_equal(model.encode(stsb_sentences, batch_size=50, show_progress_bar=True), quiet)
    assert "4/4" in capsys.readouterr().err


def test_callers_sharing_a_pool_only_queue_behind_each_other():
    # several encodes on one model share its pool: their slices wait in one first-in, first-out queue,
    # none waits on another's futures, so all finish with their own rows in order
    batches = [list(range(start, start + 5)) for start in range(0, 60, 5)]
    results: dict[int, list[list[int]]] = {}

    def caller(index: int, pool: ThreadPoolExecutor) -> None:
        results[index] = [r[:, 0].tolist() for r in map_concurrently(rows_of, batches, pool, 2)]

    with ThreadPoolExecutor(2) as pool:
        callers = [threading.Thread(target=caller, args=(i, pool), daemon=True) for i in range(4)]
        for thread in callers:
            thread.start()
        for thread in callers:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in callers), "callers sharing a pool hung"
    assert results == {i: batches for i in range(4)}


def test_batches_group_similar_lengths():
    from edgesbert.runtime.batching import BatchRunner

    runner, lengths = BatchRunner(), [5, 40, 12, 33, 7, 28, 19, 2, 50, 21]
    batches = runner.batch_indices(lengths, 4)
    assert [[lengths[i] for i in batch] for batch in batches] == [[50, 40, 33, 28], [21, 19, 12, 7], [5, 2]]


def test_exported_models_batch_by_tokens_not_characters(exported):
    from edgesbert.runtime import BiEncoder, CrossEncoder

    model = BiEncoder(exported())
    texts = ["a b c d e f g h", "a man is playing a guitar.", "x", "the the the the"]
    counts = [int(m.sum()) for m in model.tokenizer(texts)["attention_mask"]]
    assert list(model._lengths(texts)) == counts
    assert counts[0] > counts[1] and len(texts[0]) < len(texts[1])  # characters would say otherwise
    (first, *_), *_ = model.batch_indices(model._lengths(texts), 2)
    assert first == 0  # the text with most tokens leads
    model.max_seq_length = 4  # truncated texts weigh what the graph gets
    assert max(model._lengths(texts)) == 4
    pairs = [("q", t) for t in texts]
    scorer = CrossEncoder(exported("bert-1", kind="cross-encoder"))
    assert list(scorer._lengths(pairs)) == [int(m.sum()) for m in scorer.tokenizer(pairs)["attention_mask"]]
