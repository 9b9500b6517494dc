"""Child process of the final-model tests: LoRA on the tiny converted Mixtral, trained with ``final_dir``.

Usage: ``python child_final.py CONFIG_JSON FINAL_DIR RESULT_FILE`` (under ``torch.distributed.run``).
The process group is formed first and the model built inside ``weights_on_main_only``: with the example
FSDP config (cpu-RAM-efficient loading) ranks > 0 build it, convert it and add LoRA on the meta device;
each rank writes ``RESULT_FILE.rank<r>.json`` saying how many of its tensors were on meta then.
After :func:`adamoe.train.train` returns, every process runs the live model on fixed ids (under FSDP a
collective forward of the still-sharded model, LoRA unmerged) and rank 0 also runs ``result.model``
(the gathered, merged model that was saved); both logits go to RESULT_FILE (safetensors) with the ids
and the per-step LM losses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_setup import arithmetic_pairs

from adamoe.hf.models import ModelSpec
from adamoe.train import TrainConfig, train
from adamoe.train.accelerator import end_distributed, start_distributed, weights_on_main_only
from adamoe.train.lora import LoRASettings, apply_lora


def main() -> None:
    torch.set_num_threads(1)
    config = TrainConfig.from_dict(json.loads(sys.argv[1]))
    rank = start_distributed("cpu").process_index
    with weights_on_main_only():
        model, tok, _ = ModelSpec.parse("tiny-mixtral-adamoe").load(seed=0)
        model = apply_lora(model, LoRASettings(rank=4, alpha=8), seed=0)
    tensors = [*model.parameters(), *model.buffers()]
    meta = {"tensors": len(tensors), "on_meta": sum(t.is_meta for t in tensors)}
    Path(f"{sys.argv[3]}.rank{rank}.json").write_text(json.dumps(meta))
    result = train(model, tok, arithmetic_pairs(16), config, final_dir=sys.argv[2])
    ids = torch.arange(2 * 9).reshape(2, 9) * 7 % model.config.vocab_size
    model.eval()
    with torch.no_grad():
        live = model(input_ids=ids).logits
        if rank == 0:
            gathered = result.model(input_ids=ids).logits
            losses = torch.tensor([r["lm_loss"] for r in result.history], dtype=torch.float64)
            tensors = {"ids": ids, "live": live.contiguous(), "gathered": gathered, "lm_loss": losses}
            save_file(tensors, sys.argv[3])
    end_distributed()


if __name__ == "__main__":
    main()
