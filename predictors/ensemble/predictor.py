"""``ensemble``: stacking of member predictors named as specs.

    bench run ensemble
    bench run ensemble --param members=xgboost,knn,rag:gpt-4o-mini \
        --param "member_params=knn.k=20;rag.k=10" --param paid_slice=200

Stacking as the field does it (``predictors.ensemble.folds`` splits the pool):

1. The training pool (``train.jsonl`` + ``train-extra.jsonl``, test rows removed)
   is shuffled once with ``seed``: ``holdout`` rows are kept from every member
   and from the blend; the rest is dealt into ``folds`` folds, the same for
   every member (``pool_size`` draws a seeded sample of the pool first: cheaper
   runs; members still train on all their own rows outside the fold).
2. Out-of-fold (OOF) predictions: for each fold, each member is built with a
   context that holds that fold (and the holdout) out of its training rows, and
   predicts the fold through the ordinary runner (``ctx.predict_with``: stored
   under ``<results>/held-out-runs/``, resumable, cached, costed). No row is
   predicted by a model that trained on it. Members that cost money per item
   (an ``estimate()`` that counts requests: API predictors, rag) give OOF
   predictions on the first ``paid_slice`` rows of the pool only, and say so.
3. The blend (``predictors.ensemble.blend``) is fitted on the OOF rows every
   member answered; its form is chosen by cross-validation over those rows with
   the same folds, never on the items scored.
4. Every member is refitted on all rows (the pool, holdout included: the same
   model as the member run alone) to predict the items scored. The holdout is
   predicted by each member fitted on every pool row but the holdout, and
   blended: its figures (members' and the ensemble's) go to run.json.

run.json's ``details`` (and ``bench show ensemble``) hold the plan (folds,
holdout, paid slice), each member's OOF and holdout error, the members' error
correlation, the blend's form, cross-validated errors and weights, and the
cross-validated error of the blend without each member.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from bench.errors import BenchError
from bench.registry import parse_spec, register
from bench.types import Example, Prediction, Product, capabilities
from predictors.ensemble import blend as blending
from predictors.ensemble.folds import Plan, make_plan

DEFAULT_MEMBERS = "xgboost,random-forest,knn"


@register("ensemble", kind="ensemble")
class EnsemblePredictor:
    """Stacking: members' out-of-fold guesses on the training pool, a blend chosen by CV."""

    version = 2
    batch_size = 1024

    def __init__(self, members: str = DEFAULT_MEMBERS, folds: int = 5, holdout: int = 500,
                 paid_slice: int = 300, pool_size: int | None = None, seed: int = 42,
                 blend: str = "auto", member_params: str = "", ctx: Any = None):
        specs = [s.strip() for s in members.split(",") if s.strip()]
        if len(specs) < 2:
            raise ValueError(f"members must name at least two predictors, not {members!r}")
        if len(set(specs)) != len(specs):
            raise ValueError(f"members names a predictor twice: {members!r}")
        for spec in specs:
            if parse_spec(spec)[0] == "ensemble":
                raise ValueError("an ensemble cannot be its own member")
        if folds < 2:
            raise ValueError(f"folds must be at least 2, not {folds}")
        if holdout < 0:
            raise ValueError(f"holdout cannot be negative, not {holdout}")
        if paid_slice < blending.MIN_ROWS:
            raise ValueError(f"paid_slice must be at least {blending.MIN_ROWS}, not {paid_slice}")
        if pool_size is not None and pool_size < 20:
            raise ValueError(f"pool_size must be at least 20, not {pool_size}")
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
        self.k = folds
        self.holdout = holdout
        self.paid_slice = paid_slice
        self.pool_size = pool_size
        self.seed = seed
        self.blend_form = blend
        self.ctx = ctx
        self._plan: Plan | None = None
        self._members: list[Any] | None = None
        self._paid: dict[str, bool] = {}
        self._blend: blending.Blend | None = None
        self._report: dict[str, Any] = {}

    # -- the split and the members ---------------------------------------------------------

    def plan(self) -> Plan:
        """The holdout, the folds and the paid slice of the training pool."""
        if self._plan is None:
            if self.ctx is None:
                raise BenchError("ensemble needs a data context to find its training rows")
            pool, fp = self.ctx.train_examples(include_extra=True, size=self.pool_size,
                                               seed=self.seed)
            try:
                self._plan = make_plan(pool, self.k, self.holdout, self.paid_slice, self.seed,
                                       fp)
            except ValueError as exc:
                raise BenchError(f"ensemble: {exc}") from None
        return self._plan

    def holdout_context(self) -> Any:
        """The context of the members that predict the holdout: every pool row but it."""
        assert self.ctx is not None
        return self.ctx.holding_out(e.product for e in self.plan().holdout)

    def fold_context(self, fold: int) -> Any:
        """The context of fold ``fold``'s members: the fold and the holdout held out."""
        assert self.ctx is not None
        plan = self.plan()
        return self.ctx.holding_out(e.product for e in [*plan.holdout, *plan.folds[fold]])

    def members(self) -> list[Any]:
        """The members refitted on all rows, which predict the items scored."""
        if self._members is None:
            assert self.ctx is not None
            self._members = [self.ctx.build(s, self.params[s]) for s in self.specs]
        return self._members

    def is_paid(self, spec: str) -> bool:
        """Whether a member costs money per item: its ``estimate()`` counts requests."""
        if spec not in self._paid:
            member = self.members()[self.specs.index(spec)]
            self._paid[spec] = capabilities(member).estimate([]) is not None
        return self._paid[spec]

    def oof_rows(self, spec: str, fold: int) -> list[Example]:
        """The rows of ``fold`` that ``spec`` predicts out of fold."""
        rows = self.plan().folds[fold]
        if not self.is_paid(spec):
            return rows
        paid = {e.product.id for e in self.plan().paid}
        return [e for e in rows if e.product.id in paid]

    def _run_name(self, part: str, spec: str) -> str:
        paid = f"-paid{len(self.plan().paid)}" if self.is_paid(spec) else ""
        return f"{part}{paid}-{self.plan().digest()[:10]}"

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
        info = self.plan().info()
        members = []
        for spec, member in zip(self.specs, self.members(), strict=True):
            own = getattr(member, "fingerprint", None)
            members.append({"spec": spec, "params": self.params[spec],
                            "paid": self.is_paid(spec),
                            **(dict(own()) if callable(own) else {})})
        info["holdout"] = {k: v for k, v in info["holdout"].items() if k != "ids"}
        return {"kind": "ensemble", "version": self.version, "members": members,
                "plan": info, "blend": self.blend_form}

    def estimate(self, products: Sequence[Product]) -> dict[str, Any] | None:
        """What the paid members would ask (their OOF slice, the holdout, the items),
        and cost; nothing is sent. None when no member costs money."""
        total: dict[str, Any] = {"requests": 0, "input_tokens": 0, "output_tokens": 0,
                                 "cost_usd": 0.0, "breakdown": []}
        paid = [s for s in self.specs if self.is_paid(s)]
        if not paid:
            return None
        for spec in paid:
            params = self.params[spec]
            parts: list[tuple[str, Any, list[Product]]] = [
                (f"fold {f + 1}/{self.k}", self.fold_context(f).build(spec, params),
                 [e.product for e in self.oof_rows(spec, f)]) for f in range(self.k)]
            parts += [("holdout", self.holdout_context().build(spec, params),
                       [e.product for e in self.plan().holdout]),
                      ("items", self.members()[self.specs.index(spec)], list(products))]
            for label, member, rows in parts:
                got = capabilities(member).estimate(rows) or {}
                for key in ("requests", "input_tokens", "output_tokens"):
                    total[key] += int(got.get(key) or 0)
                cost = got.get("cost_usd")
                if cost is None:
                    total["cost_usd"] = None
                elif total["cost_usd"] is not None:
                    total["cost_usd"] += cost
                total["breakdown"].append(
                    {"member": spec, "part": label, "rows": len(rows),
                     "requests": got.get("requests", 0), "cost_usd": cost})
        return total

    def prepare(self) -> None:
        """OOF predictions of every member (through the runner), the blend chosen by CV
        on them, and the refitted members' answers on the holdout."""
        if self._blend is not None:
            return
        plan = self.plan()
        oof: dict[str, dict[int, float]] = {}
        held: dict[str, dict[int, float]] = {}
        report: dict[str, Any] = {}
        for spec in self.specs:
            oof[spec], fit_s, cost = {}, 0.0, 0.0
            for f in range(self.k):
                rows = self.oof_rows(spec, f)
                if not rows:
                    continue
                answers, seconds, spent = self._run(self.fold_context(f), spec, rows,
                                                    self._run_name(f"oof-fold{f + 1}of{self.k}",
                                                                   spec))
                oof[spec].update(answers)
                fit_s += seconds
                cost += spent
            if not oof[spec]:
                raise BenchError(f"ensemble: member {spec} answered no out-of-fold row")
            held[spec], seconds, spent = ({}, 0.0, 0.0)
            if plan.holdout:
                held[spec], seconds, spent = self._run(self.holdout_context(), spec, plan.holdout,
                                                       self._run_name("holdout", spec))
            asked = sum(len(self.oof_rows(spec, f)) for f in range(self.k))
            report[spec] = {
                "oof_mae": round(_mae(oof[spec], plan.oof_rows), 4),
                "oof_answered": f"{len(oof[spec])}/{asked}",
                "rows": "paid slice" if self.is_paid(spec) else "all OOF rows",
                "holdout_mae": (round(_mae(held[spec], plan.holdout), 4)
                                if held[spec] else None),
                "train_and_predict_s": round(fit_s + seconds, 1),
                "cost_usd": round(cost + spent, 6) if cost + spent else 0.0,
            }
        self._fit_blend(oof, report)
        self._score_holdout(held)

    def _run(self, ctx: Any, spec: str, rows: list[Example],
             name: str) -> tuple[dict[int, float], float, float]:
        """``spec`` built in ``ctx`` run on ``rows``: its answers by id, the seconds its
        run spent preparing (training) and predicting when it ran, and its cost."""
        member = ctx.build(spec, self.params[spec])
        result = ctx.predict_with(member, spec, self.params[spec], rows, name, progress=False)
        records = result.store.records()
        answers = {i: r.price for i, r in records.items() if r.price is not None}
        info = result.store.run_info()
        timings = info.timings if info is not None else None
        seconds = ((timings.last_prepare_s or 0) + (timings.predict_s_total or 0)
                   if timings is not None else 0.0)
        cost = sum(r.prediction.cost_usd or 0.0 for r in records.values())
        return answers, float(seconds), float(cost)

    def _fit_blend(self, oof: dict[str, dict[int, float]], report: dict[str, Any]) -> None:
        plan = self.plan()
        rows = [e for e in plan.oof_rows if all(e.product.id in oof[s] for s in self.specs)]
        prices = [[oof[s][e.product.id] for s in self.specs] for e in rows]
        truth = [e.price for e in rows]
        fold_ids = [plan.fold_of(e.product.id) for e in rows]
        try:
            self._blend, cv = blending.fit(prices, truth, fold_ids, self.blend_form, self.seed)
        except ValueError as exc:
            raise BenchError(f"ensemble: {exc}") from None
        without = {}
        for drop in range(len(self.specs)) if len(self.specs) > 2 else ():
            keep = [i for i in range(len(self.specs)) if i != drop]
            without[self.specs[drop]] = round(blending.cv_mae(
                [[row[i] for i in keep] for row in prices], truth, self._blend.form, fold_ids,
                self.seed), 4)
        for i, spec in enumerate(self.specs):
            report[spec]["oof_mae_blend_rows"] = round(
                sum(abs(p[i] - t) for p, t in zip(prices, truth, strict=True)) / len(truth), 4)
        self._report = {
            "members": report,
            "error_correlation": correlation(prices, truth, self.specs),
            "blend": {"form": self._blend.form, "rows": len(rows),
                      "chosen_by": f"{self.k}-fold CV over the OOF rows (same folds)",
                      "cv_mae": cv, "cv_mae_without": without,
                      "weights": self._blend.named(self.specs)},
            "plan": plan.info(),
            "refit": "members refitted on all rows for the items; on all but the holdout "
                     "for the holdout",
        }

    def _score_holdout(self, held: dict[str, dict[int, float]]) -> None:
        assert self._blend is not None
        rows = [e for e in self.plan().holdout if all(e.product.id in held[s]
                                                      for s in self.specs)]
        if not rows:
            return
        guesses = self._blend.predict([[held[s][e.product.id] for s in self.specs]
                                       for e in rows])
        mae = {s: round(_mae(held[s], rows), 4) for s in self.specs}
        self._report["holdout"] = {
            "rows": len(rows),
            "ensemble_mae": round(sum(abs(g - e.price) for g, e in zip(guesses, rows,
                                                                        strict=True)) / len(rows),
                                  4),
            "best_member": min(mae, key=lambda s: mae[s]), "best_member_mae": min(mae.values())}

    def run_details(self) -> dict[str, Any]:
        return self._report

    def weights(self) -> dict[str, float | str]:
        self.prepare()
        assert self._blend is not None
        return self._blend.named(self.specs)

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        self.prepare()
        assert self._blend is not None
        products = list(products)
        columns = [self._member_predictions(member, products) for member in self.members()]
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
    def _member_predictions(member: Any, products: list[Product]) -> list[Prediction]:
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


def correlation(prices: Sequence[Sequence[float]], truth: Sequence[float],
                names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Pearson correlation of the members' log errors (log guess - log truth)."""
    import numpy as np

    p = np.log(np.maximum(np.asarray(prices, dtype=np.float64), blending.FLOOR))
    t = np.log(np.maximum(np.asarray(truth, dtype=np.float64), blending.FLOOR))
    errors = p - t[:, None]
    r = np.corrcoef(errors, rowvar=False) if len(names) > 1 else np.ones((1, 1))
    return {a: {b: round(float(r[i, j]), 3) if math.isfinite(r[i, j]) else 0.0
                for j, b in enumerate(names)} for i, a in enumerate(names)}


def _mae(answers: dict[int, float], rows: Sequence[Example]) -> float:
    got = [abs(answers[e.product.id] - e.price) for e in rows if e.product.id in answers]
    return sum(got) / len(got) if got else math.nan


def _total(values: Sequence[float | int | None]) -> Any:
    known = [v for v in values if v is not None]
    return sum(known) if known else None
