"""``ensemble``: a learned blend of member predictors named as specs.

    bench run ensemble --param members=linear,random-forest,xgboost,knn
    bench run ensemble --param members=xgboost,knn,rag:gpt-4o-mini \
        --param "member_params=knn.k=20;rag.k=10"

1. A validation slice of ``slice_size`` rows is drawn (seeded) from the
   training pool (``train.jsonl``, test rows already removed): never a scored
   item, and recorded in run.json (ids, digest, seed).
2. Every member is built with a context that holds those rows out, so the
   trainable ones train without them (their fitted models are keyed by their
   training rows, so these are separate from the members' own runs).
3. Every member runs on the slice through the ordinary runner
   (``ctx.predict_with``), stored under ``<results>/held-out-runs/``: API
   members are cached, resumable and costed like any run.
4. The blend (``predictors.ensemble.blend``) is fitted on the slice rows every
   member answered; its weights go into run.json (``details``) and
   ``bench show ensemble`` prints them.

On the items scored, each member predicts and the blend combines them; an item
that a member could not answer is no answer (with that member's reason).
Member parameters are ``--param member_params=MEMBER.KEY=VALUE;...``
(``knn.k=20;linear.train_size=500``).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from typing import Any

from bench.errors import BenchError
from bench.registry import parse_spec, register
from bench.types import Example, Prediction, Product
from predictors.ensemble import blend as blending

DEFAULT_MEMBERS = "linear,random-forest,xgboost,knn"


@register("ensemble", kind="ensemble")
class EnsemblePredictor:
    """A learned blend (non-negative, on a held-out training slice) of member predictors."""

    version = 1
    batch_size = 1024

    def __init__(self, members: str = DEFAULT_MEMBERS, slice_size: int = 500, seed: int = 42,
                 blend: str = "auto", member_params: str = "", ctx: Any = None):
        specs = [s.strip() for s in members.split(",") if s.strip()]
        if len(specs) < 2:
            raise ValueError(f"members must name at least two predictors, not {members!r}")
        if len(set(specs)) != len(specs):
            raise ValueError(f"members names a predictor twice: {members!r}")
        for spec in specs:
            if parse_spec(spec)[0] == "ensemble":
                raise ValueError("an ensemble cannot be its own member")
        if slice_size < 20:
            raise ValueError(f"slice_size must be at least 20, not {slice_size}")
        if blend != "auto" and blend not in blending.FORMS:
            raise ValueError(f"blend must be auto, {', '.join(blending.FORMS)}, not {blend!r}")
        self.specs = specs
        self.params: dict[str, dict[str, str]] = {s: {} for s in specs}
        self.member_params = member_params
        for pair in filter(None, (p.strip() for p in member_params.split(";"))):
            key, eq, value = pair.partition("=")
            owner, sep, param = key.strip().rpartition(".")
            match = [s for s in specs if owner in (s, parse_spec(s)[0])] if sep else []
            if not match or not param or not eq:
                raise ValueError(f"bad member parameter {pair!r}: member_params is "
                                 f"MEMBER.KEY=VALUE;... with MEMBER one of {', '.join(specs)}")
            for spec in match:
                self.params[spec][param] = str(value)
        self.name = "ensemble"
        self.slice_size = slice_size
        self.seed = seed
        self.blend_form = blend
        self.ctx = ctx
        self._slice: list[Example] | None = None
        self._members: list[Any] | None = None
        self._member_ctx: Any = None
        self._blend: blending.Blend | None = None
        self._report: dict[str, Any] = {}

    # -- the validation slice and the members ------------------------------------------

    def validation_slice(self) -> list[Example]:
        """``slice_size`` training-pool rows drawn with ``seed`` (never a test item)."""
        if self._slice is None:
            if self.ctx is None:
                raise BenchError("ensemble needs a data context to find its training rows")
            pool, _ = self.ctx.train_examples(include_extra=False)
            if len(pool) < self.slice_size * 2:
                raise BenchError(f"ensemble: slice_size {self.slice_size} is more than half "
                                 f"of the {len(pool)} training-pool rows")
            picked = sorted(random.Random(self.seed).sample(range(len(pool)), self.slice_size))
            self._slice = [pool[i] for i in picked]
        return self._slice

    def slice_info(self) -> dict[str, Any]:
        ids = [e.product.id for e in self.validation_slice()]
        digest = hashlib.sha256(json.dumps(
            [[e.product.description, round(e.price, 2)] for e in self.validation_slice()]
        ).encode()).hexdigest()
        return {"source": "training pool (train.jsonl), test rows removed",
                "size": len(ids), "seed": self.seed, "sha256": digest, "ids": ids}

    def members(self) -> list[Any]:
        """The members, built with the slice held out of their training rows."""
        if self._members is None:
            assert self.ctx is not None
            self._member_ctx = self.ctx.holding_out(e.product for e in self.validation_slice())
            self._members = [self._member_ctx.build(s, self.params[s]) for s in self.specs]
        return self._members

    # -- the harness's hooks ----------------------------------------------------------------

    def unavailable(self) -> str | None:
        if self.ctx is None:
            return "needs a data context"
        for spec in self.specs:
            try:
                member = self.ctx.build(spec, self.params[spec])
            except BenchError as exc:
                return f"member {spec}: {exc}"
            check = getattr(member, "unavailable", None)
            reason = check() if callable(check) else None
            if reason:
                return f"member {spec}: {reason}"
        return None

    def fingerprint(self) -> dict[str, Any]:
        info = self.slice_info()
        members = []
        for spec, member in zip(self.specs, self.members(), strict=True):
            own = getattr(member, "fingerprint", None)
            members.append({"spec": spec, "params": self.params[spec],
                            **(dict(own()) if callable(own) else {})})
        return {"kind": "ensemble", "version": self.version, "members": members,
                "slice": {k: v for k, v in info.items() if k != "ids"},
                "blend": self.blend_form}

    def prepare(self) -> None:
        """Run every member on the slice (through the runner), then fit the blend."""
        if self._blend is not None:
            return
        rows = self.validation_slice()
        truth = {e.product.id: e.price for e in rows}
        name = f"slice-{self.slice_info()['sha256'][:10]}"
        answers: dict[str, dict[int, float | None]] = {}
        report: dict[str, Any] = {}
        for spec, member in zip(self.specs, self.members(), strict=True):
            result = self._member_ctx.predict_with(member, spec, self.params[spec], rows, name)
            records = result.store.records()
            answers[spec] = {i: records[i].price if i in records else None for i in truth}
            answered = sum(v is not None for v in answers[spec].values())
            if answered == 0:
                raise BenchError(f"ensemble: member {spec} answered no validation row "
                                 f"(see {result.store.dir})")
            report[spec] = {"fingerprint_hash": result.store.dir.name.rsplit("-", 1)[-1],
                            "slice_mae": round(result.scores.mae, 4)
                            if result.scores.mae is not None else None,
                            "answered": f"{answered}/{len(truth)}",
                            "run": str(result.store.dir)}
        complete = [i for i in truth if all(answers[s][i] is not None for s in self.specs)]
        prices = [[float(answers[s][i]) for s in self.specs] for i in complete]  # type: ignore[arg-type]
        try:
            self._blend, cv = blending.fit(prices, [truth[i] for i in complete],
                                           self.blend_form, self.seed)
        except ValueError as exc:
            raise BenchError(f"ensemble: {exc}") from None
        self._report = {
            "members": report,
            "slice": self.slice_info(),
            "blend": {"form": self._blend.form, "rows": len(complete),
                      "cv_mae": cv, "weights": self._blend.named(self.specs)},
        }

    def run_details(self) -> dict[str, Any]:
        return self._report

    def weights(self) -> dict[str, float]:
        self.prepare()
        assert self._blend is not None
        return self._blend.named(self.specs)

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        self.prepare()
        assert self._blend is not None
        products = list(products)
        columns = [self._member_predictions(spec, member, products)
                   for spec, member in zip(self.specs, self.members(), strict=True)]
        out = []
        for row in zip(*columns, strict=True):
            missing = [(s, p) for s, p in zip(self.specs, row, strict=True) if p.price is None]
            cost = _total([p.cost_usd for p in row])
            tokens_in, tokens_out = (_total([p.input_tokens for p in row]),
                                     _total([p.output_tokens for p in row]))
            raw = json.dumps({s: p.price for s, p in zip(self.specs, row, strict=True)})
            if missing:
                why = "; ".join(f"{s}: {p.error or 'no answer'}" for s, p in missing)
                out.append(Prediction.failed(f"member without an answer ({why})"[:400], raw=raw,
                                             cost_usd=cost, input_tokens=tokens_in,
                                             output_tokens=tokens_out))
                continue
            price = self._blend.predict([[float(p.price) for p in row]])[0]  # type: ignore[arg-type]
            out.append(Prediction(price=round(price, 2), raw=raw, cost_usd=cost,
                                  input_tokens=tokens_in, output_tokens=tokens_out))
        return out

    @staticmethod
    def _member_predictions(spec: str, member: Any, products: list[Product]) -> list[Prediction]:
        try:
            prepare = getattr(member, "prepare", None)
            if callable(prepare):
                prepare()
            got = list(member.predict(products))
            if len(got) != len(products):
                raise RuntimeError(f"{len(got)} predictions for {len(products)} items")
            return got
        except BenchError:
            raise
        except Exception as exc:  # one failing member: each item says why
            return [Prediction.failed(f"{type(exc).__name__}: {exc}"[:200]) for _ in products]


def _total(values: Sequence[float | int | None]) -> Any:
    known = [v for v in values if v is not None]
    return sum(known) if known else None

