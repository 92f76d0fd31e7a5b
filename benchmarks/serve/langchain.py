"""LangChain's ``OpenAIEmbeddings`` through `edgesbert serve` against the runtime in-process (issue 30).

The documents: the first ``documents`` unique STSb and TrecQA texts of the bulk jobs' corpus (10,000
in the full run). Through the server: the ``edgesbert`` system (benchmarks/serve/systems.py) on a free
port, and ``OpenAIEmbeddings`` configured as for any server that is not OpenAI: the served model's name,
``check_embedding_ctx_length=False`` (strings, not tiktoken's token ids, which mean nothing to this model)
and ``chunk_size=1000`` (its default: 1,000 texts per request). In-process, with the server stopped:
``BiEncoder.encode`` of the same folder and variant, unit-length as the OpenAI route answers, its default
batch size and threads. Each way embeds the first 1,000 documents once to warm up, then all of them, timed:
documents/s, and the largest absolute difference between the two sets of vectors.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import corpus_texts
from benchmarks.common.timing import log, timed
from benchmarks.serve.load import WORK, Server, free_port, start, stop

CHUNK_SIZE = 1000  # OpenAIEmbeddings' default: texts per request
WARM_UP = 1000


def documents(count: int) -> list[str]:
    """The first ``count`` unique STSb and TrecQA texts."""
    texts = corpus_texts()
    if len(texts) < count:
        raise SystemExit(f"the corpus has {len(texts):,} unique texts, fewer than {count:,}")
    return texts[:count]


def through_server(system: Server, model: str, texts: list[str]) -> tuple[np.ndarray, float]:
    """The vectors ``OpenAIEmbeddings`` gets from the server's ``model``, and the seconds it took (after a
    warm-up)."""
    from langchain_openai import OpenAIEmbeddings

    port = free_port()
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    process, _ = start(system, port, WORK / "logs" / f"langchain-{system.name}.log")
    try:
        client = OpenAIEmbeddings(
            model=model,
            base_url=f"http://127.0.0.1:{port}/v1",
            api_key="unused",  # type: ignore[arg-type]
            check_embedding_ctx_length=False,
            chunk_size=CHUNK_SIZE,
            max_retries=0,
        )
        client.embed_documents(texts[:WARM_UP])
        seconds, vectors = timed(client.embed_documents, texts)
        return np.array(vectors, dtype=np.float32), seconds
    finally:
        stop(process)


def in_process(folder: Path, variant: str, texts: list[str]) -> tuple[np.ndarray, float]:
    """The runtime's vectors of ``texts`` (unit length), and the seconds ``encode`` took (after a warm-up)."""
    from edgesbert.runtime import BiEncoder

    model = BiEncoder(folder, variant=variant)
    model.encode(texts[:WARM_UP], normalize_embeddings=True)
    seconds, vectors = timed(model.encode, texts, normalize_embeddings=True)
    return vectors, seconds


def measure(system: Server, folder: Path, variant: str, count: int) -> dict[str, Any]:
    """Documents/s through the server with LangChain and in-process, and how far apart the vectors are."""
    texts = documents(count)
    served, served_s = through_server(system, folder.name, texts)  # the server names it after its folder
    local, local_s = in_process(folder, variant, texts)
    figures = {
        "documents": len(texts),
        "requests": -(-len(texts) // CHUNK_SIZE),
        "server_docs_s": round(len(texts) / served_s, 1),
        "in_process_docs_s": round(len(texts) / local_s, 1),
        "max_abs_diff": float(np.abs(served - local).max()),
        "command": " ".join(system.argv),
        "langchain_openai": metadata.version("langchain-openai"),
    }
    log(f"serve: LangChain {figures['server_docs_s']} documents/s, in-process {figures['in_process_docs_s']}")
    return figures


def report(figures: dict[str, Any]) -> list[str]:
    """The report's LangChain section."""
    ratio = figures["server_docs_s"] / figures["in_process_docs_s"]
    return [
        f"## LangChain `OpenAIEmbeddings` through the server against in-process `encode`, "
        f"{figures['documents']:,} documents",
        "",
        f"Unique STSb and TrecQA texts; langchain-openai {figures['langchain_openai']} "
        f"(`check_embedding_ctx_length=False`, `chunk_size={CHUNK_SIZE}`: {figures['requests']} requests) "
        f"against `BiEncoder.encode` of the served folder and variant, unit length; each after a warm-up on "
        f"{WARM_UP:,} documents. Server: `{figures['command']}`.",
        "",
        "| way | documents/s |",
        "|---|---:|",
        f"| through the server (LangChain) | {figures['server_docs_s']:,} ({ratio:.2f}x) |",
        f"| in-process `encode` | {figures['in_process_docs_s']:,} |",
        "",
        f"Largest absolute difference between the two sets of vectors: {figures['max_abs_diff']:.2e}.",
        "",
    ]
