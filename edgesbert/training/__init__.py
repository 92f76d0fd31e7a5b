"""Train bi-encoders and cross-encoders, and save them where sentence-transformers and edgesbert load them.

A short run::

    from edgesbert.reference import BiEncoder
    from edgesbert.training import (
        BiEncoderTask, CoSENTLoss, STSEvaluator, Trainer, TrainingConfig, read_sts_csv, sts_examples,
    )

    model = BiEncoder("path/to/start")
    train = sts_examples(read_sts_csv("stsb-en-train.csv"))
    evaluator = STSEvaluator.from_pairs(read_sts_csv("stsb-en-dev.csv"))
    history = Trainer(
        BiEncoderTask(model, CoSENTLoss()), TrainingConfig(epochs=1), evaluator=evaluator, output_folder="out"
    ).fit(train)
    # out/final and out/best are sentence-transformers folders

Needs ``pip install "edgesbert[train]"``.
"""

from __future__ import annotations

from edgesbert.errors import require

require("torch", "train")
require("transformers", "train")

from edgesbert.training.data import Example, ScoredPair, read_sts_csv, sts_examples  # noqa: E402
from edgesbert.training.distillation import (  # noqa: E402
    distillation_examples,
    parallel_sentences,
    read_parallel_stsb,
)
from edgesbert.training.evaluators import (  # noqa: E402
    ClassificationResult,
    CorrelationResult,
    CrossEncoderClassificationEvaluator,
    CrossEncoderCorrelationEvaluator,
    EvaluationResult,
    Evaluator,
    MSEEvaluator,
    MSEResult,
    STSEvaluator,
    TranslationEvaluator,
    TranslationResult,
)
from edgesbert.training.losses import (  # noqa: E402
    BiEncoderLoss,
    BinaryCrossEntropyLoss,
    CoSENTLoss,
    CosineSimilarityLoss,
    CrossEncoderLoss,
    CrossEntropyLoss,
    MatryoshkaLoss,
    MSELoss,
    MultipleNegativesRankingLoss,
)
from edgesbert.training.retrieval import (  # noqa: E402
    InformationRetrievalEvaluator,
    RerankingEvaluator,
    RerankingResult,
    RerankingSample,
    RetrievalResult,
)
from edgesbert.training.save import save_bi_encoder, save_cross_encoder  # noqa: E402
from edgesbert.training.tasks import BiEncoderTask, CrossEncoderTask, TrainingTask  # noqa: E402
from edgesbert.training.trainer import (  # noqa: E402
    Evaluation,
    Trainer,
    TrainingConfig,
    TrainingHistory,
    seed_everything,
)

__all__ = [
    "BiEncoderLoss",
    "BiEncoderTask",
    "BinaryCrossEntropyLoss",
    "ClassificationResult",
    "CoSENTLoss",
    "CorrelationResult",
    "CosineSimilarityLoss",
    "CrossEncoderClassificationEvaluator",
    "CrossEncoderCorrelationEvaluator",
    "CrossEncoderLoss",
    "CrossEncoderTask",
    "CrossEntropyLoss",
    "Evaluation",
    "EvaluationResult",
    "Evaluator",
    "Example",
    "InformationRetrievalEvaluator",
    "MSEEvaluator",
    "MSELoss",
    "MSEResult",
    "MatryoshkaLoss",
    "MultipleNegativesRankingLoss",
    "RerankingEvaluator",
    "RerankingResult",
    "RerankingSample",
    "RetrievalResult",
    "STSEvaluator",
    "ScoredPair",
    "Trainer",
    "TrainingConfig",
    "TrainingHistory",
    "TrainingTask",
    "TranslationEvaluator",
    "TranslationResult",
    "distillation_examples",
    "parallel_sentences",
    "read_parallel_stsb",
    "read_sts_csv",
    "save_bi_encoder",
    "save_cross_encoder",
    "seed_everything",
    "sts_examples",
]
