"""A tiny random causal LM for tests that need a real model's shape but not its skill: the config of
an embedded model shrunk to 2 layers, 128 wide, with random weights (seeded). Only structure can be
asserted on it (tags, token counts, which model wrote what, a loss that falls), never answers."""

from __future__ import annotations

import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "generation_config.json")


def tiny_model(like: str, folder: Path | None = None, chat_template: str | None = None, seed: int = 0):
    """The model, built from ``like``'s config; saved with ``like``'s tokenizer (and ``chat_template``,
    else ``like``'s own) into ``folder`` where one is given, so that an engine can open it."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(like)
    config.update({"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                   "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 64})
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    if folder is not None:
        for name in TOKENIZER_FILES:
            shutil.copy(Path(like) / name, folder / name)
        template = chat_template if chat_template is not None else (Path(like) / "chat_template.jinja").read_text()
        (folder / "chat_template.jinja").write_text(template)
        model.to(torch.bfloat16).save_pretrained(folder)
    return model
