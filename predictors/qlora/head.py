"""A regression head on the fine-tuned model: a linear map from one hidden
state to the log of the price (``--param head=log-price``).

Small models generating a price digit by digit get magnitudes wrong; a head
reads the price off the model's state after ``Price is $`` in one forward pass.
It trains with the LoRA adapter (``training.py``: the head's loss on the
standardised ``log1p(price)`` is added to the loss on the price tokens, so the
same adapter can still price by generating) and is saved beside it:

- ``price_head.safetensors``: ``weight`` (1, hidden) and ``bias`` (1,);
- ``price_head.json``: what it reads (``layer``, ``pool``) and how its output
  maps back to dollars (``mean``, ``std`` of the training targets).

Both files are part of the adapter's content digest (``sources.HEAD_FILES``),
so a retrained head is a new run. torch is imported inside the functions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from predictors.qlora.sources import HEAD_FILES

WEIGHTS, CONFIG = HEAD_FILES
KINDS = ("none", "log-price")
POOLS = ("last", "mean")


@dataclass(frozen=True)
class HeadSpec:
    """Which hidden state the head reads and how its output becomes dollars."""

    kind: str = "log-price"
    layer: int = -1  # index into hidden_states; -1 = the final (normed) state
    pool: str = "last"  # "last": the prompt's last token ("$"); "mean": all prompt tokens
    mean: float = 0.0  # of log1p(price) over the training rows
    std: float = 1.0
    depth: int = 0  # > 0: only the first `depth` decoder layers run (then the final norm)

    def __post_init__(self) -> None:
        if self.kind not in KINDS[1:]:
            raise ValueError(f"head must be one of {', '.join(KINDS)} (got {self.kind!r})")
        if self.pool not in POOLS:
            raise ValueError(f"head_pool must be one of {', '.join(POOLS)} (got {self.pool!r})")
        if not (math.isfinite(self.std) and self.std > 0 and math.isfinite(self.mean)):
            raise ValueError("the head's target mean and std must be finite, std > 0")
        if self.depth < 0:
            raise ValueError("head_depth must not be negative")

    def target(self, price: float) -> float:
        return (math.log1p(max(price, 0.0)) - self.mean) / self.std

    def price(self, output: float) -> float:
        return max(0.0, math.expm1(output * self.std + self.mean))


def fitted_spec(prices: Sequence[float], layer: int, pool: str, depth: int = 0) -> HeadSpec:
    """The spec for these training prices (the target standardised on them)."""
    logs = [math.log1p(max(p, 0.0)) for p in prices]
    mean = sum(logs) / len(logs)
    std = math.sqrt(sum((v - mean) ** 2 for v in logs) / len(logs)) or 1.0
    return HeadSpec("log-price", layer, pool, mean, std, depth)


def truncate(model: Any, depth: int) -> Any:
    """Keep the first ``depth`` decoder layers of ``model`` (a causal LM, in
    place; 0 or more than it has: all). The head of a shallow spec reads the
    final norm of that stack, and half the layers cost half the time."""
    decoder = model.get_decoder()
    layers = len(decoder.layers)
    if 0 < depth < layers:
        decoder.layers = decoder.layers[:depth]
        decoder.config.num_hidden_layers = depth
        if isinstance(getattr(decoder.config, "layer_types", None), list):
            decoder.config.layer_types = decoder.config.layer_types[:depth]
    return model


def make(hidden_size: int) -> Any:
    """A fresh head: zero weights, so it starts at the training mean."""
    import torch

    head = torch.nn.Linear(hidden_size, 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    return head


def wants_all_layers(spec: HeadSpec) -> bool:
    """Whether the decoder must return every layer's states (not only the last)."""
    return spec.layer != -1


def features(output: Any, prompt_mask: Any, last: Any, spec: HeadSpec) -> Any:
    """(batch, hidden) features from a decoder's output: the chosen layer at
    each row's last prompt token (``last``), or its mean over the prompt
    tokens (``prompt_mask`` 1 on them). Layer -1 is the final, normed state."""
    import torch

    states = output.last_hidden_state if spec.layer == -1 else output.hidden_states[spec.layer]
    if spec.pool == "last":
        return states[torch.arange(states.shape[0], device=states.device), last]
    mask = prompt_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def save(folder: Path, head: Any, spec: HeadSpec, *, stem: str = "price_head") -> None:
    """``<stem>.safetensors`` and ``<stem>.json`` in ``folder`` (the head's files
    by default; ``price_head.init`` keeps a head's starting point beside it)."""
    from safetensors.torch import save_file

    from bench.fsutil import atomic_write_json

    tensors = {k: v.detach().float().cpu().contiguous() for k, v in head.state_dict().items()}
    save_file(tensors, str(Path(folder) / f"{stem}.safetensors"))
    atomic_write_json(Path(folder) / f"{stem}.json", asdict(spec))


def present(folder: Path | None) -> bool:
    return folder is not None and (Path(folder) / WEIGHTS).is_file() \
        and (Path(folder) / CONFIG).is_file()


def load(folder: Path, *, stem: str = "price_head") -> tuple[Any, HeadSpec]:
    """The head and its spec from an adapter folder; a missing or damaged
    file is one BenchError naming it."""
    import torch
    from safetensors.torch import load_file

    path = Path(folder) / f"{stem}.json"
    try:
        spec = HeadSpec(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise BenchError(f"no regression head beside the adapter (train one with "
                         f"--param head=log-price): {path} is missing") from None
    except (ValueError, TypeError) as exc:
        raise BenchError(f"{path}: not a price head description ({exc})") from None
    weights = Path(folder) / f"{stem}.safetensors"
    try:
        tensors = load_file(str(weights))
    except FileNotFoundError:
        raise BenchError(f"no regression head weights beside the adapter: {weights}") from None
    except Exception as exc:  # a damaged file: safetensors raises its own errors
        raise BenchError(f"{weights}: cannot read the head's weights ({exc})") from None
    weight = tensors.get("weight")
    if weight is None or "bias" not in tensors or weight.ndim != 2 or weight.shape[0] != 1:
        raise BenchError(f"{weights}: expected a (1, hidden) weight and a bias")
    head = torch.nn.Linear(weight.shape[1], 1)
    head.load_state_dict({"weight": weight, "bias": tensors["bias"]})
    head.eval()
    return head, spec


def read_prices(model: Any, tokenizer: Any, head: Any, spec: HeadSpec,
                prompts: Sequence[str], device: Any) -> list[Any]:
    """One ``inference.Output`` per prompt, its text the head's price: one
    forward pass of the decoder (no vocabulary projection), prompts padded on
    the left so the last position is each prompt's ``$``."""
    import torch

    from predictors.qlora.inference import Output, encode

    decoder = truncate(model, spec.depth).get_decoder()
    hidden = getattr(decoder.config, "hidden_size", head.in_features)
    if head.in_features != hidden:
        raise BenchError(f"the head reads {head.in_features} features but this model's "
                         f"hidden size is {hidden}: it belongs to another base")
    batch = encode(tokenizer, prompts, device)
    ids = batch["input_ids"]
    with torch.inference_mode():
        out = decoder(**batch, use_cache=False, output_hidden_states=wants_all_layers(spec))
        last = torch.full((ids.shape[0],), ids.shape[1] - 1, device=ids.device)
        feats = features(out, batch["attention_mask"], last, spec)
        # The head in float32 whatever the model's dtype (bf16 would round its weights).
        values = head.to(feats.device, torch.float32)(feats.float()).squeeze(-1).tolist()
    lengths = batch["attention_mask"].sum(-1).tolist()
    return [Output(None, f"{spec.price(v):.6f}", int(n), 0)
            for v, n in zip(values, lengths, strict=True)]


def joint_loss(model: Any, inputs: dict[str, Any], head: Any, spec: HeadSpec, *,
               head_weight: float, lm_weight: float) -> tuple[Any, Any, Any]:
    """(loss, head loss, price-token loss) on a right-padded training batch.

    One pass through the decoder; the head reads the last prompt token (or the
    prompt's mean) and is fitted to the standardised ``log1p(price)`` (mean
    squared error); the vocabulary projection runs only at the positions that
    predict a price token (the cross-entropy the plain fine-tune minimises),
    and not at all with ``lm_weight`` 0."""
    import torch
    import torch.nn.functional as F

    ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
    target = (torch.log1p(inputs["price"].clamp(min=0).float()) - spec.mean) / spec.std
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    out = base.get_decoder()(input_ids=ids, attention_mask=mask,
                             output_hidden_states=wants_all_layers(spec))
    answer = labels != -100
    first = answer.int().argmax(-1)  # every row keeps a price token (encode_examples)
    positions = torch.arange(ids.shape[1], device=ids.device)
    prompt_mask = (positions[None, :] < first[:, None]) & mask.bool()
    feats = features(out, prompt_mask, first - 1, spec)
    head_loss = F.mse_loss(head(feats.to(head.weight.dtype)).squeeze(-1).float(),
                           target.to(feats.device))
    loss = head_weight * head_loss
    lm_loss = torch.zeros((), device=head_loss.device)
    if lm_weight > 0:
        rows, cols = answer.nonzero(as_tuple=True)
        logits = base.get_output_embeddings()(out.last_hidden_state[rows, cols - 1])
        lm_loss = F.cross_entropy(logits.float(), ids[rows, cols])
        loss = loss + lm_weight * lm_loss
    return loss, head_loss.detach(), lm_loss.detach()


RIDGE_ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)


def ridge_init(head: Any, feats: Any, targets: Any) -> dict[str, float]:
    """Set ``head`` to the ridge regression of ``targets`` on ``feats`` (float
    tensors (n, hidden) and (n,)), the features standardised and the penalty
    chosen by generalised cross-validation over ``RIDGE_ALPHAS``, folded back
    into a plain linear map. Returns the chosen alpha and its GCV error."""
    import torch

    x = feats.double()
    y = targets.double()
    mu, sigma = x.mean(0), x.std(0).clamp(min=1e-6)
    z = (x - mu) / sigma
    y0 = y.mean()
    u, s, vt = torch.linalg.svd(z, full_matrices=False)
    uty = u.T @ (y - y0)
    n = float(x.shape[0])
    best: tuple[float, float] | None = None
    for alpha in RIDGE_ALPHAS:
        shrink = s**2 / (s**2 + alpha)
        fitted = u @ (shrink * uty)
        resid = (y - y0) - fitted
        gcv = float((resid**2).mean() / (1 - shrink.sum() / n) ** 2)
        if best is None or gcv < best[1]:
            best = (alpha, gcv)
    assert best is not None
    alpha = best[0]
    w = vt.T @ (s / (s**2 + alpha) * uty)
    with torch.no_grad():
        head.weight.copy_((w / sigma).float().unsqueeze(0))
        head.bias.copy_((y0 - (w / sigma) @ mu).float().reshape(1))
    return {"alpha": alpha, "gcv_mse": round(best[1], 5), "rows": int(n)}


def frozen_features(model: Any, tokenizer: Any, prices: Sequence[float], texts: Sequence[str],
                    spec: HeadSpec, *, seconds: float, batch: int = 8) -> tuple[Any, Any]:
    """Features (as the head sees them at inference) and standardised targets
    of training prompts, without gradients, until ``seconds`` have passed."""
    import time

    import torch

    from predictors.qlora.inference import encode

    started = time.perf_counter()
    decoder = model.get_decoder()
    feats, targets = [], []
    side, tokenizer.padding_side = tokenizer.padding_side, "left"  # last position = "$"
    try:
        for i in range(0, len(texts), batch):
            if time.perf_counter() - started >= seconds:
                break
            enc = encode(tokenizer, texts[i : i + batch], model.device)
            ids = enc["input_ids"]
            with torch.no_grad():
                out = decoder(**enc, use_cache=False,
                              output_hidden_states=wants_all_layers(spec))
                last = torch.full((ids.shape[0],), ids.shape[1] - 1, device=ids.device)
                feats.append(features(out, enc["attention_mask"], last, spec).float())
            targets += [spec.target(p) for p in prices[i : i + batch]]
    finally:
        tokenizer.padding_side = side
    if not feats:
        raise BenchError("no time left to compute the head's initial features")
    return torch.cat(feats), torch.tensor(targets)
