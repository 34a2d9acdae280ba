"""Convert a GGUF model file to a Hugging Face folder that vLLM can serve (run in the vLLM venv).

    VLLM_VENV/bin/python gguf_to_hf.py MODEL.gguf OUT_DIR

transformers dequantises the GGUF on load, but refuses `save_pretrained` on a model "quantized
with GGUF", so the weights are written with safetensors directly and the config without its
`quantization_config`. The tokenizer (with its chat template) comes from the same file. It needs
transformers, gguf, accelerate and safetensors, which live in the vLLM venv, not the workspace.
"""

from __future__ import annotations

import sys
from pathlib import Path


def convert(gguf: Path, out: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
    )
    # tied embeddings share storage; safetensors wants each tensor once, contiguous
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.torch_dtype = torch.bfloat16
    config.save_pretrained(out)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)


if __name__ == "__main__":
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
