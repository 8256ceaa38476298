"""The notebook API: ``evaluate``, ``compare`` and ``leaderboard`` from Python.

``evaluate`` runs through the same registry, context and runner as ``bench run``,
so its run is stored (``<results>/<test set>/<name>-<fingerprint>/``), resumable,
cached and on the CLI's leaderboard; ``compare`` is ``bench compare`` and
``leaderboard`` the rows of ``leaderboard.json``, as a DataFrame. The results
folder is ``results_dir``, else the CLI's default wherever Python runs
(``bench.places``: ``$BENCH_RESULTS_DIR``, else the checkout's ``results/`` when
inside it, else a per-user folder); the data folder is ``data_dir``, else
``$BENCH_DATA_DIR``, else the local cache or the hub, as on the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import metrics, places, registry, runner, standing
from bench.context import Context
from bench.data import load_test_set
from bench.errors import BenchError
from bench.evaluation import Evaluation
from bench.functions import NotebookFunction, Takes
from bench.types import Predictor, capabilities

if TYPE_CHECKING:
    import pandas as pd

    from bench.reports.collect import Entry

RESULTS_ENV = places.RESULTS_ENV
LEADERBOARD_KEYS = ["predictor", "test_set", "answered", "total", "mae", "mae_ci95", "rmsle",
                    "hit_rate", "status", "ranked", "not_ranked", "params", "run_dir"]


def results_path(results_dir: str | Path | None = None) -> Path:
    """``results_dir``, else the default results folder, the CLI's (``bench.places``)."""
    return places.results_dir(results_dir)


def evaluate(
    predictor: Callable[..., Any] | Predictor | str,
    *,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    limit: int | None = None,
    test: str | Path | None = None,
    data_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
    concurrency: int | None = None,
    retry_errors: bool = False,
    no_cache: bool = False,
    progress: bool = True,
    takes: Takes | None = None,
) -> Evaluation:
    """Score ``predictor`` on the test set and return its run.

    ``predictor``: a spec (``"xgboost"``, ``"openai:gpt-4o-mini"``,
    ``"reference:gpt-4o-2024-08-06"``), a Predictor object, or a plain function
    of a ``Product`` or of the prompt text (``bench.functions`` says how it is
    told apart and identified). ``params`` go to the spec's constructor (as
    ``--param``) or to the function as keyword arguments, and are checked
    against its signature before anything runs (a ``BenchError`` with the CLI's
    message); ``name`` names a function's run (``bench.identity`` says what
    else identifies it). The other options are ``bench run``'s.
    """
    if limit is not None and limit < 1:
        raise BenchError(f"limit must be at least 1, not {limit}")
    if concurrency is not None and concurrency < 1:
        raise BenchError(f"concurrency must be at least 1, not {concurrency}")
    ctx = Context(data_dir=Path(data_dir) if data_dir is not None else None,
                  use_cache=not no_cache)
    ctx.test_set = load_test_set(ctx.data_dir, test) if test is not None else ctx.benchmark
    built, spec, kind, recorded = _resolve(predictor, name, params, takes, ctx)
    reason = capabilities(built).unavailable()
    if reason:
        raise BenchError(f"{built.name} cannot run here: {reason}")
    result = runner.run_predictor(
        built, ctx.test_set, results_path(results_dir), spec=spec, kind=kind, params=recorded,
        concurrency=concurrency, limit=limit, retry_errors=retry_errors, progress=progress)
    in_scope = {p.id for p in ctx.test_set.products()[:limit]}
    records = {i: r for i, r in result.store.records().items() if i in in_scope}
    return Evaluation(result.name, kind, ctx.test_set, result.store, records, result.scores,
                      result.totals, result.predicted, result.wall_s)


def _resolve(predictor: Any, name: str | None, params: Mapping[str, Any] | None,
             takes: Takes | None, ctx: Context) -> tuple[Predictor, str, str, dict[str, str]]:
    """``(predictor, spec, kind, params as recorded)`` for what the caller passed."""
    recorded = {k: str(v) for k, v in (params or {}).items()}
    if isinstance(predictor, str):
        if name is not None or takes is not None:
            raise BenchError("name= and takes= are for functions; a spec names itself")
        if predictor == "all":
            raise BenchError("evaluate runs one predictor; use `bench run all` for every one")
        built = registry.build(predictor, dict(params or {}), ctx)  # type: ignore[arg-type]
        entry = registry.get(registry.parse_spec(predictor)[0])
        return built, predictor, entry.kind, recorded
    if isinstance(predictor, Predictor):
        if params or name is not None or takes is not None:
            raise BenchError("params=, name= and takes= are for specs and functions; "
                             "a Predictor object is used as it is")
        registered = getattr(type(predictor), "__bench_name__", None)
        kind = "custom"
        if isinstance(registered, str) and registered in registry.entries():
            kind = registry.get(registered).kind
        return predictor, predictor.name, kind, {}
    if callable(predictor):
        fn = NotebookFunction(predictor, name=name, params=params, takes=takes)
        return fn, fn.name, "custom", recorded
    raise BenchError(f"cannot evaluate {predictor!r}: pass a function, a Predictor "
                     "or a spec such as 'xgboost'")


# -- compare ------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A against B on the items both answered (``bench compare``)."""

    a: str
    b: str
    test_set: str
    paired: metrics.Paired
    text: str

    @property
    def diff(self) -> float | None:
        """MAE(A) - MAE(B) per item, in dollars: negative when A is closer."""
        return self.paired.diff

    @property
    def diff_ci95(self) -> tuple[float, float] | None:
        return self.paired.diff_ci95

    @property
    def tied(self) -> bool:
        return self.paired.tied

    @property
    def p_value(self) -> float | None:
        """Two-sided p-value of a paired sign-flip test of A - B = 0 (one comparison:
        uncorrected)."""
        return self.paired.p_value

    @property
    def better(self) -> str | None:
        """The name of the better one, None when tied."""
        if self.tied or self.paired.diff is None:
            return None
        return self.a if self.paired.diff < 0 else self.b

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.text)}</pre>"


def compare(a: Evaluation | str, b: Evaluation | str, *,
            results_dir: str | Path | None = None, test_set: str | None = None) -> Comparison:
    """The paired difference A - B with its 95% bootstrap interval. ``a`` and ``b``
    are runs returned by ``evaluate`` or names of stored runs (in ``results_dir``)."""
    from bench import show

    names = [x for x in (a, b) if isinstance(x, str)]
    entries: list[Entry] = []
    if names:
        from bench.reports.collect import collect

        entries = collect(results_path(results_dir))
        if not entries:
            raise BenchError("no stored runs: evaluate something first",
                             results_path(results_dir))
    if test_set is None:
        runs = [x.test_set.name for x in (a, b) if isinstance(x, Evaluation)]
        if runs:
            test_set = runs[0]
        elif len(names) == 2:
            test_set = show.shared_test_set(entries, names[0], names[1], None)
    left, right = (x.entry() if isinstance(x, Evaluation) else show.pick(entries, x, test_set)
                   for x in (a, b))
    if left.test_set != right.test_set:
        raise BenchError(f"{left.predictor} ran on {left.test_set} and {right.predictor} on "
                         f"{right.test_set}: compare runs on one test set")
    text = show.comparison(left, right)
    paired = metrics.paired({**left.truth, **right.truth}, left.answers, right.answers)
    return Comparison(left.predictor, right.predictor, left.test_set, paired, text)


# -- leaderboard --------------------------------------------------------------


def leaderboard(results_dir: str | Path | None = None, test_set: str | None = None, *,
                min_answered: float = standing.MIN_ANSWERED) -> pd.DataFrame:
    """The stored runs: the rows of ``leaderboard.json`` as a DataFrame (the latest
    run per predictor and test set, the fixed benchmark first; within one, the
    ranked runs, then those not ranked, with ``not_ranked`` saying why).

    ``min_answered``: the share of the test set a run must answer to be ranked
    (recorded in ``frame.attrs["min_answered"]``)."""
    import pandas as pd

    from bench.reports.collect import collect

    min_answered = standing.check_min_answered(min_answered)
    rows = [e.row() for e in collect(results_path(results_dir), test_set,
                                     min_answered=min_answered)]
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=LEADERBOARD_KEYS)
    frame.attrs["min_answered"] = min_answered
    return frame
