"""Frontier API predictors: ``openai[:MODEL]`` (also any OpenAI-compatible
server), ``anthropic[:MODEL]`` and ``openai-logprobs[:MODEL]`` (a fine-tuned
model's top-k price from a vLLM server). Cached, concurrent, retried, costed.

Importing this package registers them without importing the SDKs: those load
on the first request. See README.md next to this file for setup.
"""

from predictors.frontier import chat, logprobs, messages  # noqa: F401  (registers)
