"""The ``qlora`` predictor (a base LLM + LoRA adapter, run locally) and its
fine-tuning (``bench train qlora``).

Importing this package registers the predictor and loads no heavy library:
torch, transformers, peft and bitsandbytes are imported when a model loads.
"""

from predictors.qlora import predictor as predictor  # registers "qlora"

__all__ = ["predictor"]
