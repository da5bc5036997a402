"""What training a revision model would cost on this machine: revision examples written from the
committed GSM8K pool of the default model (`testtime revision-data`), then a few of TRL's SFT steps
of the default model itself on them, timed, and the time of one epoch over all the examples
extrapolated from the seconds per trained token. The pool's questions are GSM8K test questions:
fine for timing, not for a reviser anyone should use (train one on a pool of train questions).

    .venv/bin/python bench/reviser_cost.py --steps 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from snapshots import restore


def main() -> None:
    from testtime.models import DEFAULT_MODEL, resolve_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="SFT steps to time, one example each")
    parser.add_argument("--pool", type=Path, default=Path("runs/prm/test-pool"))
    parser.add_argument("--out", type=Path, default=Path("runs/reviser-cost"))
    a = parser.parse_args()
    restore(a.pool, f"prm-test-pool-{DEFAULT_MODEL}")
    a.out.mkdir(parents=True, exist_ok=True)
    data = a.out / "revisions.jsonl"
    subprocess.run([sys.executable, "-m", "testtime", "revision-data", str(a.pool), "--out", str(data)], check=True)

    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    folder = resolve_model(DEFAULT_MODEL)
    examples = datasets.load_dataset("json", data_files=str(data), split="train")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    config = SFTConfig(output_dir=str(a.out / "trainer"), max_steps=a.steps, per_device_train_batch_size=1,
                       learning_rate=1e-5, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
                       bf16=True, max_length=2048, seed=0)
    trainer = SFTTrainer(model=model, args=config, train_dataset=examples, processing_class=tokenizer)
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    per_token = seconds / (a.steps * sum(lengths) / len(lengths))  # the steps' examples are shuffled: mean length
    epoch_hours = per_token * sum(lengths) / 3600
    print(json.dumps({"model": DEFAULT_MODEL, "examples": len(lengths), "tokens": sum(lengths),
                      "mean_tokens": round(sum(lengths) / len(lengths)), "steps": a.steps,
                      "seconds": round(seconds, 1), "seconds_per_token": round(per_token, 4),
                      "epoch_hours": round(epoch_hours, 1)}))


if __name__ == "__main__":
    main()
