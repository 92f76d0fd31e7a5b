"""Run an export folder in another runtime; executed by the peers environment's Python (.venv-peers).

Reads a JSON list of jobs on stdin and prints their outputs as one JSON list: the jobs of a test run in one
process, which imports each runtime once (sentence-transformers with optimum takes seconds). Jobs:
- {"runtime": "sentence-transformers", "folder", "backend": "onnx" | "openvino", "file", "texts"}: embeddings
- {"runtime": "sentence-transformers-cross", "folder", "backend", "file", "pairs"}: CrossEncoder scores
- {"runtime": "fastembed", "folder", "file", "dim", "pooling": "mean" | "cls", "normalize", "texts"}
- {"runtime": "openvino-genai", "folder", "pooling", "normalize", "texts"}: TextEmbeddingPipeline
- {"runtime": "openvino-genai-rerank", "folder", "query", "documents"}: TextRerankPipeline scores, in order
- {"runtime": "model2vec", "folder", "texts"}: StaticModel.from_pretrained embeddings (a static variant)
- {"runtime": "sentence-transformers-static", "folder", "texts", "prompt_name"}: a static variant's folder
  loaded as a SentenceTransformer (StaticEmbedding, Normalize)
"""

from __future__ import annotations

import json
import sys
from typing import Any


def model_kwargs(job: dict[str, Any]) -> dict[str, Any]:
    """The graph file; for OpenVINO, float32 arithmetic, which it replaces by bf16 on CPUs that have it."""
    if job["backend"] == "openvino":
        # f32 and no on-the-fly activation quantization (weight-compressed graphs), as the runtime runs them
        ov_config = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}
        return {"file_name": job["file"], "ov_config": ov_config}
    return {"file_name": job["file"]}


def sentence_transformers(job: dict[str, Any]) -> list[Any]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        job["folder"], backend=job["backend"], model_kwargs=model_kwargs(job), local_files_only=True
    )
    return model.encode(job["texts"]).tolist()


def sentence_transformers_cross(job: dict[str, Any]) -> list[Any]:
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(
        job["folder"], backend=job["backend"], model_kwargs=model_kwargs(job), local_files_only=True
    )
    return model.predict([tuple(pair) for pair in job["pairs"]]).tolist()


def fastembed(job: dict[str, Any]) -> list[Any]:
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    name = f"edgesbert/interop-test-{job['file'].replace('/', '-')}"  # one per graph file, in one process
    if name not in {m["model"] for m in TextEmbedding.list_supported_models()}:
        TextEmbedding.add_custom_model(
            model=name,
            pooling=PoolingType.MEAN if job["pooling"] == "mean" else PoolingType.CLS,
            normalization=job["normalize"],
            sources=ModelSource(hf=name),
            dim=job["dim"],
            model_file=job["file"],
        )
    model = TextEmbedding(name, specific_model_path=job["folder"], threads=1)
    return [vector.tolist() for vector in model.embed(job["texts"], batch_size=64)]


def openvino_genai(job: dict[str, Any]) -> list[Any]:
    import openvino_genai as genai

    config = genai.TextEmbeddingPipeline.Config()
    pooling = genai.TextEmbeddingPipeline.PoolingType
    config.pooling_type = pooling.MEAN if job["pooling"] == "mean" else pooling.CLS
    config.normalize = job["normalize"]
    pipeline = genai.TextEmbeddingPipeline(
        f"{job['folder']}/openvino", "CPU", config, INFERENCE_PRECISION_HINT="f32"
    )
    return [list(vector) for vector in pipeline.embed_documents(job["texts"])]


def openvino_genai_rerank(job: dict[str, Any]) -> list[Any]:
    import openvino_genai as genai

    config = genai.TextRerankPipeline.Config()
    config.top_n = len(job["documents"])
    pipeline = genai.TextRerankPipeline(
        f"{job['folder']}/openvino", "CPU", config, INFERENCE_PRECISION_HINT="f32"
    )
    scores = dict(pipeline.rerank(job["query"], job["documents"]))
    return [scores[i] for i in range(len(job["documents"]))]


def model2vec(job: dict[str, Any]) -> list[Any]:
    from model2vec import StaticModel

    return StaticModel.from_pretrained(job["folder"]).encode(job["texts"]).tolist()


def sentence_transformers_static(job: dict[str, Any]) -> list[Any]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(job["folder"], device="cpu", local_files_only=True)
    return model.encode(job["texts"], prompt_name=job.get("prompt_name")).tolist()


if __name__ == "__main__":
    jobs = json.load(sys.stdin)
    runners = {
        "sentence-transformers": sentence_transformers,
        "sentence-transformers-cross": sentence_transformers_cross,
        "fastembed": fastembed,
        "openvino-genai": openvino_genai,
        "openvino-genai-rerank": openvino_genai_rerank,
        "model2vec": model2vec,
        "sentence-transformers-static": sentence_transformers_static,
    }
    print(json.dumps([runners[job["runtime"]](job) for job in jobs]))
