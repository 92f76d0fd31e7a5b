"""Static variants loaded where static models already live give the numbers edgesbert gives (issue 31).

model2vec's ``StaticModel.from_pretrained`` reads ``static/`` and ``static-int8/`` (it has no prompts);
sentence-transformers reads ``static/`` as a SentenceTransformer (StaticEmbedding, then Normalize), with the
model's prompts and default prompt. Both run in the peers environment (tests/interop/test_peers.py says how);
sentence-transformers' StaticEmbedding cannot run int8 rows, so ``static-int8/`` has no files of its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesbert.runtime import load
from tests.interop.test_peers import TOLERANCE, peers, run_peers  # noqa: F401 (peers is a fixture)

TEXTS = [
    "A man is playing a guitar.",
    "The weather is lovely today, isn't it?",
    "Berlin has a population of 3,520,031 registered inhabitants.",
    "zebra",
    "word " * 400,  # longer than the model takes: truncated alike
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_bi_encoder_folder) -> Path:
    from edgesbert.exporters import export_model

    output = tmp_path_factory.mktemp("interop-static") / "prompts"
    export_model(tiny_bi_encoder_folder("bert-sqrt-prompts"), output, validation_size=32, static=True)
    return output


def test_model2vec_and_sentence_transformers_load_the_static_folders(peers, folder):  # noqa: F811
    jobs = [
        {"runtime": "model2vec", "folder": folder / "static", "texts": TEXTS},
        {"runtime": "model2vec", "folder": folder / "static-int8", "texts": TEXTS},
        {"runtime": "sentence-transformers-static", "folder": folder / "static", "texts": TEXTS},
        {
            "runtime": "sentence-transformers-static",
            "folder": folder / "static",
            "texts": TEXTS,
            "prompt_name": "passage",
        },
    ]
    m2v, m2v_int8, st, st_passage = run_peers(peers, jobs)
    static, static_int8 = load(folder, variant="static"), load(folder, variant="static-int8")
    np.testing.assert_allclose(m2v, static.encode(TEXTS, prompt=""), atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(m2v_int8, static_int8.encode(TEXTS, prompt=""), atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(st, static.encode(TEXTS), atol=TOLERANCE, rtol=0)  # the default prompt
    np.testing.assert_allclose(
        st_passage, static.encode(TEXTS, prompt_name="passage"), atol=TOLERANCE, rtol=0
    )
