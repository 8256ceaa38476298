"""A tiny Llama-architecture model and tokenizer, built in code, for tests and
the CPU benchmark: the whole load / fine-tune / predict path runs on it in
seconds, with no download.

Like Llama 3's tokenizer, every number 0..999 is a single token (and a BOS
token is prepended), so the price after ``Price is $`` is one next token and
the top-k rule applies unchanged. Words come from the texts it is built for;
anything else maps to ``<unk>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

BOS, EOS, UNK = "<|begin_of_text|>", "<|end_of_text|>", "<unk>"


def build_tokenizer(texts: Iterable[str], *, split_digits: bool = False) -> object:
    """A word-level fast tokenizer: specials, "0".."999", "00", the texts' words.

    ``split_digits`` makes it split numbers into single digits (as SmolLM2's
    and many other tokenizers do): then only "0".."9" are number tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    numbers = [str(i) for i in range(10 if split_digits else 1000)]
    words = [BOS, EOS, UNK, *numbers, *([] if split_digits else ["00"])]
    pre = pre_tokenizers.Whitespace()  # \w+|[^\w\s]+ : "$374.00" -> $ 374 . 00
    if split_digits:
        pre = pre_tokenizers.Sequence([pre, pre_tokenizers.Digits(individual_digits=True)])
    seen = set(words)
    for text in texts:
        for word, _ in pre.pre_tokenize_str(text):
            if word not in seen:
                seen.add(word)
                words.append(word)
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=UNK))
    core.pre_tokenizer = pre
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, 0)])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=BOS, eos_token=EOS,
                                   unk_token=UNK)


def build_tiny_llama(directory: str | Path, texts: Iterable[str], *, hidden: int = 64,
                     layers: int = 2, seed: int = 0, split_digits: bool = False) -> Path:
    """Save a randomly initialised tiny Llama and its tokenizer to ``directory``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    tokenizer = build_tokenizer(texts, split_digits=split_digits)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=1024, bos_token_id=0, eos_token_id=1,
        tie_word_embeddings=False,
        # Wider than the usual 0.02: behind the final RMSNorm, logits are bounded
        # by the LM head's row norms, and a 64-wide head at 0.02 could never
        # become confident enough for its loss to fall visibly.
        initializer_range=0.25,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)  # type: ignore[attr-defined]
    return directory


def build_tiny_adapter(base_dir: str | Path, directory: str | Path, *, r: int = 8,
                       seed: int = 0) -> Path:
    """Save a LoRA adapter with random (non-zero) weights for ``base_dir``, so
    that loading it changes the outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "k_proj", "v_proj",
                        "o_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(directory)
    return Path(directory)


# Llama 3's special tokens after its 128,000 BPE ranks: as in Meta's own
# tokenizer (llama_models/llama3/tokenizer.py), 256 in all.
LLAMA3_SPECIALS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
    "<|python_tag|>", "<|image|>",
    *(f"<|reserved_special_token_{2 + i}|>" for i in range(256 - 12)),
]


def build_llama3_tokenizer(tokenizer_model: str | Path, directory: str | Path) -> object:
    """The real Llama 3 tokenizer, made from Meta's ``tokenizer.model`` (tiktoken
    BPE ranks, from the ``llama-models`` wheel) with transformers'
    ``TikTokenConverter`` (its default split pattern is Llama 3's), a BOS
    prepended as the hub's tokenizer does; saved to ``directory``."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    core = TikTokenConverter(vocab_file=str(tokenizer_model),
                             extra_special_tokens=LLAMA3_SPECIALS).converted()
    bos = LLAMA3_SPECIALS[0]
    core.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
        special_tokens=[(bos, core.token_to_id(bos))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=bos,
                                        eos_token=LLAMA3_SPECIALS[1])
    tokenizer.save_pretrained(directory)
    return tokenizer


def build_fixed_llama(directory: str | Path, tokenizer: object,
                      logits: dict[str, float]) -> Path:
    """A tiny Llama over ``tokenizer``'s vocabulary whose next-token logits are
    the same after any text: ``logits[token text]`` for the tokens named, 0 for
    every other token. (Every embedding is one vector and the blocks add
    nothing to the residual stream, so the final hidden state h is fixed; each
    named token's LM-head row is ``logit * h / |h|^2``.)"""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden = 8
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden,  # type: ignore[arg-type]
        intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,  # type: ignore[attr-defined]
        tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        vector = torch.linspace(1.0, 2.0, hidden)
        model.model.embed_tokens.weight.copy_(vector.expand_as(model.model.embed_tokens.weight))
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        final = model.model.norm(vector[None, None, :])[0, 0]
        head = model.lm_head.weight
        head.zero_()
        for text, logit in logits.items():
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
            if len(ids) != 1:
                raise ValueError(f"{text!r} is not one token here: {ids}")
            head[ids[0]] = logit * final / final.dot(final)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)  # type: ignore[attr-defined]
    return Path(directory)


def build_fixed_llama3_gguf(directory: str | Path, logits: dict[str, float]) -> Path:
    """``build_fixed_llama`` over the real Llama 3 tokenizer (its
    ``tokenizer.model`` comes from the ``llama-models`` wheel, downloaded once),
    written as ``directory/fixed-llama3.gguf`` for llama.cpp's server: a served
    model whose numbers are whole tokens and whose top next tokens are known."""
    from predictors.qlora.gguf import write_llama
    from predictors.qlora.wheels import fetch

    directory = Path(directory)
    tokenizer = build_llama3_tokenizer(fetch("llama3-tokenizer"), directory / "tokenizer")
    model = build_fixed_llama(directory / "model", tokenizer, logits)
    return write_llama(model, directory / "fixed-llama3.gguf", name="fixed-llama3")
