"""Run lm-evaluation-harness on local task YAMLs and write what it computed, per document.

``python lm_eval_run.py MODEL_DIR TASK_DIR OUT.json MAX_LENGTH TASK...``: lm-eval's ``hf`` model
(``pretrained=MODEL_DIR``) on the tasks defined in TASK_DIR (``dataset_path: json`` over local
files); run by the agreement tests in a subprocess with the hub and datasets offline.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    model_dir, task_dir, out, max_length, *tasks = sys.argv[1:]
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    res = simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_dir},max_length={max_length},dtype=float32",
        tasks=tasks,
        task_manager=TaskManager(include_path=task_dir),
        batch_size=4,
        device="cpu",
        log_samples=True,
    )
    record = {
        "results": res["results"],
        "samples": {
            t: [
                {"doc": s["doc"], "resps": s["resps"], "filtered": s["filtered_resps"]}
                for s in sorted(res["samples"][t], key=lambda s: s["doc_id"])
            ]
            for t in tasks
        },
    }
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(record, fh, default=str)


if __name__ == "__main__":
    main()
