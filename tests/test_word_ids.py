"""A static variant's word cache gives the tokenizer's own ids, text for text (runtime/word_ids.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from edgesbert.runtime.word_ids import WordIds

DATA = Path(__file__).resolve().parents[1] / "data"
LANGUAGES = ("de", "en", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "zh")
AWKWARD = [
    "",
    "   ",
    "\t\n\r",
    "word",
    "Crème brûlée, naïve café!",
    "a\x1cb\x1dc \x85 d\x0be\x0cf",  # controls the normalizer deletes, not spaces
    "no\u00a0break\u2003em\u3000ideographic\u2028line\u2029para\u200bzero-width",
    "ΟΔΟΣ Σ ςσ",  # final sigma: lowercased by its context
    "中文字符和English混在一起",
    "emoji 🙂🙃 and \ufffd replacement",
    "[CLS] [MASK] stays special [SEP]",
    "a" * 150 + " long-word-over-the-wordpiece-limit",
    "e\u0301 combining at a start: \u0301x",
    " ".join(["token"] * 600),  # over every limit: truncated
]


def sentences() -> list[str]:
    texts = []
    for language in LANGUAGES:
        with (DATA / f"stsb-{language}-test.csv").open(encoding="utf-8") as f:
            rows = [row for row in csv.reader(f) if len(row) == 3][:100]
        texts += [s for row in rows for s in row[:2]]
    return texts


@pytest.fixture(scope="module", params=["minilm", "tiny"])
def tokenizer_file(request, tmp_path_factory) -> Path:
    if request.param == "minilm":
        from edgesbert.resolve import resolve_model

        return resolve_model("sentence-transformers/all-MiniLM-L6-v2") / "tokenizer.json"
    from tests.tiny_models import train_wordpiece_tokenizer

    path = tmp_path_factory.mktemp("word-ids") / "tokenizer.json"
    train_wordpiece_tokenizer().save(str(path))
    return path


@pytest.mark.parametrize("limit", [510, 7])
def test_the_ids_are_the_tokenizers_for_real_and_awkward_texts(tokenizer_file, limit):
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    word_ids = WordIds.for_tokenizer(tokenizer_file)
    assert word_ids is not None
    texts = sentences() + AWKWARD
    expected = [e.ids[:limit] for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    for _ in range(2):  # the first call fills the cache, the second reads it
        ids, counts = word_ids(texts, limit)
        assert counts.tolist() == [len(e) for e in expected]
        assert ids.tolist() == [i for e in expected for i in e]


def test_tokenizers_whose_tokens_carry_word_boundaries_take_the_ordinary_path(tmp_path):
    from tokenizers import models, pre_tokenizers

    byte_level = Tokenizer(models.BPE())
    byte_level.pre_tokenizer = pre_tokenizers.ByteLevel()
    byte_level.save(str(tmp_path / "tokenizer.json"))
    assert WordIds.for_tokenizer(tmp_path / "tokenizer.json") is None


def test_a_static_variant_encodes_as_its_padded_batches_do(tmp_path, tiny_bi_encoder_folder):
    from edgesbert.exporters import export_model
    from edgesbert.runtime import load

    folder = tmp_path / "static"
    export_model(tiny_bi_encoder_folder("bert-mean"), folder, validation_size=32, static=True)
    texts = sentences()[:300] + AWKWARD
    for variant in ("static", "static-int8"):
        model = load(folder, variant=variant)
        assert model._word_ids is not None
        fast = model.encode(texts)
        model._word_ids = None  # the ordinary path: tokenizer batches, padded
        np.testing.assert_allclose(fast, model.encode(texts, batch_size=7), atol=1e-6, rtol=0)
