// Run an edgesbert export folder in transformers.js (Node, onnxruntime-node): one JSON job on stdin,
// the outputs as JSON on stdout. Jobs:
//   {"task": "embed", "folder", "dtype": "fp32" | "q8", "pooling": "mean" | "cls", "normalize", "texts"}
//   {"task": "score", "folder", "dtype", "pairs": [[query, document], ...]}: sigmoid of the logits
import path from "node:path";
import { readFileSync } from "node:fs";
import {
  env, pipeline, AutoTokenizer, AutoModelForSequenceClassification,
} from "@huggingface/transformers";

const job = JSON.parse(readFileSync(0, "utf8"));
env.allowRemoteModels = false; // the folder only: nothing from the Hub
env.localModelPath = path.dirname(job.folder);
const name = path.basename(job.folder);
const options = { dtype: job.dtype, local_files_only: true };

let result;
if (job.task === "embed") {
  const extractor = await pipeline("feature-extraction", name, options);
  const output = await extractor(job.texts, { pooling: job.pooling, normalize: job.normalize });
  result = output.tolist();
} else {
  const tokenizer = await AutoTokenizer.from_pretrained(name, options);
  const model = await AutoModelForSequenceClassification.from_pretrained(name, options);
  const inputs = tokenizer(job.pairs.map((p) => p[0]), {
    text_pair: job.pairs.map((p) => p[1]), padding: true, truncation: true,
  });
  const { logits } = await model(inputs);
  result = logits.sigmoid().tolist().map((row) => row[0]);
}
process.stdout.write(JSON.stringify(result) + "\n");
