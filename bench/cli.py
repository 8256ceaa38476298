"""``python -m bench`` / ``bench``: run, list, leaderboard, score, compare, show,
train, human export, cache, site, view. User mistakes print one line and exit with code 2."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import places, registry, standing
from bench.context import Context
from bench.data import TestSet, load_test_set
from bench.errors import BenchError
from bench.escape import terminal
from bench.fsutil import folder, writable_folder
from bench.reports import format as fmt
from bench.types import capabilities

EXIT_BAD_INPUT = 2


EXIT_FAILED = 1  # a run stopped because its first items all failed the same way
EXIT_INTERRUPTED = 130
RESUME_HINT = "interrupted: rerun the same command to resume"
# Kinds that replay a recorded sheet: asking again gives the same no-answers.
REPLAYED = ("person", "reference")


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The parsed command line, with the default results folder filled in
    (``bench.places``: the same one the Python API uses)."""
    args = build_parser().parse_args(argv)
    if getattr(args, "results_dir", "") is None:
        args.results_dir = places.default_results_dir()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    restore = _first_interrupt_only()
    try:
        return int(args.handler(args) or 0)
    except BenchError as exc:
        print(f"error: {terminal(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(RESUME_HINT, file=sys.stderr, flush=True)
        if argv is None:  # the program itself: end now, whatever threads are stuck
            sys.stdout.flush()
            os._exit(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `bench list | head`
        sys.stderr.close()
        return 0
    except OSError as exc:  # a folder that is a file, read-only, full: one line, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {terminal(f'{where}{exc.strerror or exc}')}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        restore()


def _first_interrupt_only() -> Any:
    """The first Ctrl-C raises KeyboardInterrupt; later ones are ignored, so the
    run's clean-up (run.json marked interrupted) is never cut by a second one.
    Returns what puts the previous handler back (for callers in-process)."""
    previous = signal.getsignal(signal.SIGINT)
    if (threading.current_thread() is not threading.main_thread()
            or previous is not signal.default_int_handler):
        return lambda: None

    def interrupt(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    return lambda: signal.signal(signal.SIGINT, previous)


# -- parser ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("--data-dir", type=Path, default=None,
                      help="folder with test.jsonl/train.jsonl (default $BENCH_DATA_DIR, "
                           "else the local cache, else the Hugging Face hub)")
    data.add_argument("--test", type=Path, default=None, metavar="FILE",
                      help="score on this JSONL file instead of the fixed test set")
    results = argparse.ArgumentParser(add_help=False)
    results.add_argument("--results-dir", type=Path, default=None,
                         help="where runs are stored (default: $BENCH_RESULTS_DIR, else "
                              "results/ of this checkout when run inside it, else "
                              "~/.local/share/pricer-bench/results)")
    ranking = argparse.ArgumentParser(add_help=False)
    ranking.add_argument("--min-answered", type=_share, default=standing.MIN_ANSWERED,
                         metavar="SHARE",
                         help="rank only runs asked every item that answered at least this "
                              f"share of them (default {standing.MIN_ANSWERED})")
    params = argparse.ArgumentParser(add_help=False)
    params.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="predictor parameter (repeatable)")
    params.add_argument("--no-cache", action="store_true",
                        help="neither read nor write the raw-response cache")

    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[data, results, params],
                         help="score predictors on the test set")
    run.add_argument("specs", nargs="+", metavar="SPEC", help="'all' or NAME[:VARIANT] ...")
    run.add_argument("--limit", type=int, default=None, help="only the first N items")
    run.add_argument("--concurrency", type=int, default=None,
                     help="parallel requests for per-item predictors")
    run.add_argument("--retry-errors", action="store_true",
                     help="re-ask items recorded as no answer")
    run.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                     help="time limit per item, after which it is recorded as no answer "
                          "(default: the predictor's, else 600)")
    run.add_argument("--dry-run", action="store_true",
                     help="count requests, tokens and cost without sending anything")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--max-cost", type=float, default=None, metavar="DOLLARS",
                     help="spend at most this on API calls across the runs (cached answers "
                          "are free); items it cannot pay for are left for a rerun")
    run.add_argument("--log", choices=["mlflow"], default=None,
                     help="also log each run to MLflow (MLFLOW_TRACKING_URI, else "
                          "RESULTS/mlruns)")
    run.set_defaults(handler=cmd_run)

    lst = sub.add_parser("list", parents=[data], help="every predictor and whether it can run")
    lst.add_argument("--long", action="store_true",
                     help="the full reason a predictor cannot run (default: one short line)")
    lst.set_defaults(handler=cmd_list)

    board = sub.add_parser("leaderboard", parents=[results, ranking],
                           help="write LEADERBOARD.md, leaderboard.json and .csv, and charts "
                                "(in RESULTS_DIR/local/; the published board with --publish)")
    board.add_argument("--publish", action="store_true",
                       help="write the published board (RESULTS_DIR/LEADERBOARD.md ..., "
                            "charts/) instead of the working one in RESULTS_DIR/local/: what "
                            "`make publish` does")
    board.add_argument("--data-dir", type=Path, default=None,
                       help="test rows for the break-down by category (default: "
                            "$BENCH_DATA_DIR, the local cache, or where the runs read them)")
    board.add_argument("--no-charts", action="store_true", help="skip drawing the PNG charts")
    board.add_argument("--update-readme", nargs="?", type=Path, const=Path("README.md"),
                       default=None, metavar="PATH",
                       help="rewrite the block between <!-- leaderboard:start --> and "
                            "<!-- leaderboard:end --> in PATH (default README.md); "
                            "with --publish only")
    board.set_defaults(handler=cmd_leaderboard)

    # Reports read the stored runs only; --data-dir is accepted (and ignored where it is not
    # needed) so one can paste the same options across commands.
    stored_data = argparse.ArgumentParser(add_help=False)
    stored_data.add_argument("--data-dir", type=Path, default=None,
                             help="accepted for symmetry with the other commands; not needed: "
                                  "the stored predictions carry the truth")

    score = sub.add_parser("score", parents=[results, stored_data],
                           help="re-score stored predictions")
    score.set_defaults(handler=cmd_score)

    compare = sub.add_parser("compare", parents=[results, stored_data],
                             help="paired comparison of two predictors")
    compare.add_argument("a")
    compare.add_argument("b")
    compare.add_argument("--test-set", default=None,
                         help="default: the fixed benchmark, or the one test set both ran on")
    compare.set_defaults(handler=cmd_compare)

    show = sub.add_parser("show", parents=[results, ranking],
                          help="one predictor's worst misses, best hits and break-downs")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--data-dir", type=Path, default=None,
                      help="test rows for titles and categories (default: $BENCH_DATA_DIR, "
                           "the local cache, or where the run read them)")
    show.add_argument("--test-set", default=None)
    show.add_argument("--count", type=int, default=10, help="items in each list (default 10)")
    show.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                      help="the run of NAME with this parameter, as `bench run NAME --param` "
                           "stored it (repeatable)")
    show.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                      help="colour the items green/orange/red (auto: on a terminal, "
                           "unless NO_COLOR is set)")
    show.set_defaults(handler=cmd_show)

    train_help = ("fit a trainable predictor and save it (replacing the saved model for the "
                  "same rows and parameters)")
    train = sub.add_parser("train", help=train_help, description=train_help)
    train.add_argument("name")
    train.add_argument("--data-dir", type=Path, default=None,
                       help="folder with train.jsonl (default $BENCH_DATA_DIR, else the local "
                            "cache, else the Hugging Face hub)")
    train.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="training parameter (repeatable), e.g. train_size=2000")
    train.set_defaults(handler=cmd_train)

    human = sub.add_parser("human", help="the person's sheet")
    human_sub = human.add_subparsers(dest="action", required=True)
    export = human_sub.add_parser("export", parents=[data],
                                  help="write the blank sheet (prompt,0 rows) to fill in")
    export.add_argument("--output", type=Path, required=True, metavar="FILE",
                        help="where to write the sheet (required: never a surprise file "
                             "in the current folder)")
    export.add_argument("--force", action="store_true", help="overwrite an existing file")
    export.set_defaults(handler=cmd_human_export)

    built = argparse.ArgumentParser(add_help=False)
    built.add_argument("--output", type=Path, default=None,
                       help="where to write the site (default: RESULTS_DIR/local/site; "
                            "never the published RESULTS_DIR/site)")
    built.add_argument("--data-dir", type=Path, default=None,
                       help="test rows for titles, text and categories (default: "
                            "$BENCH_DATA_DIR, the local cache, or where the runs read them)")
    site = sub.add_parser("site", parents=[results, built, ranking],
                          help="write a static site of the stored runs (opens offline)")
    site.add_argument("--publish", action="store_true",
                      help="write the published site, RESULTS_DIR/site (what `make publish` "
                           "does)")
    site.set_defaults(handler=cmd_site)

    view = sub.add_parser("view", parents=[results, built, ranking],
                          help="build the site and serve it on 127.0.0.1")
    view.add_argument("--port", type=int, default=7575, help="0: any free port (default 7575)")
    view.add_argument("--no-browser", action="store_true", help="do not open a browser")
    view.set_defaults(handler=cmd_view)

    cache = sub.add_parser("cache", help="the raw-response cache")
    cache.add_argument("action", choices=["info", "clear"])
    cache.add_argument("--predictor", default=None, help="clear only this predictor's entries")
    cache.set_defaults(handler=cmd_cache)
    return parser


# -- helpers -----------------------------------------------------------------


def _share(text: str) -> float:
    """``--min-answered``: a share from 0 to 1 (``0.95``), or a percentage (``95%``)."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        return standing.check_min_answered(value)
    except (ValueError, BenchError):
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1 (0.95) or a "
                                         f"percentage (95%), not {text!r}") from None


def _context(args: argparse.Namespace, with_test_set: bool = True) -> Context:
    ctx = Context(data_dir=getattr(args, "data_dir", None),
                  use_cache=not getattr(args, "no_cache", False),
                  results_dir=getattr(args, "results_dir", None))
    if with_test_set:
        test = getattr(args, "test", None)
        ctx.test_set = load_test_set(ctx.data_dir, test) if test else ctx.benchmark
    return ctx


def _why_not(predictor: Any) -> str | None:
    return capabilities(predictor).unavailable()


# -- commands ----------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Run each predictor.

    Named explicitly, a predictor that cannot run here (no key, a missing file,
    ``unavailable()`` says why) or fails to build or prepare is an error (exit 2,
    its reason in one line), checked before anything runs. With ``all``, such a
    predictor is skipped with its reason and the rest still run (exit 0). A run
    whose first items all failed the same way stops, says why, and the command
    exits 1. Another
    process writing the same run directory stops this one at once (exit 2).
    """
    from bench import runner, tables
    from bench.lock import RunLocked

    writable_folder(args.results_dir)
    ctx = _context(args)
    test_set = ctx.test_set
    assert test_set is not None
    if args.limit is not None and args.limit < 1:
        raise BenchError(f"--limit must be at least 1, not {args.limit}")
    if args.concurrency is not None and args.concurrency < 1:
        raise BenchError(f"--concurrency must be at least 1, not {args.concurrency}")
    if args.timeout is not None and not args.timeout > 0:
        raise BenchError(f"--timeout must be more than 0 seconds, not {args.timeout}")
    from bench.budget import Budget, check

    limit = check(args.max_cost)
    budget = Budget(limit) if limit is not None else None
    tracker = None
    if args.log == "mlflow":
        from bench import mlflow_log

        tracker = mlflow_log.client(args.results_dir)  # no MLflow: one line, exit 2
    everything = list(args.specs) == ["all"]
    skipped: list[tuple[str, str]] = []
    built = registry.build_all(args.specs, registry.parse_params(args.param), ctx,
                               skipped=skipped if everything else None)
    if args.dry_run:
        return _dry_run(built, test_set, args.limit)
    if not everything:  # named explicitly: one that cannot run is the user's to fix
        for _, predictor, _ in built:
            reason = _why_not(predictor)
            if reason:
                raise BenchError(f"cannot run {predictor.name}: {reason}")
    rows, failed, retryable = [], [], []
    for spec, predictor, params in built:
        try:
            reason = _why_not(predictor)
            if not reason:
                entry = registry.get(registry.parse_spec(spec)[0])
                result = runner.run_predictor(
                    predictor, test_set, args.results_dir, spec=spec, kind=entry.kind,
                    params=params, concurrency=args.concurrency, limit=args.limit,
                    retry_errors=args.retry_errors, progress=not args.quiet,
                    timeout=args.timeout, budget=budget)
        except RunLocked:
            raise
        except BenchError as exc:
            if not everything:
                raise
            reason = str(exc)
        if reason:
            skipped.append((predictor.name, reason))
            continue
        if result.failure:
            failed.append(result.name)
            print(terminal(f"failed {result.name}: {result.failure}"), file=sys.stderr)
        if result.stopped:
            print(terminal(f"stopped {result.name}: {result.stopped}"), file=sys.stderr)
        if tracker is not None and result.store.run_path.exists():
            print(terminal(f"mlflow: {result.name} logged as run "
                           f"{mlflow_log.log_run(tracker, result.store)}"))
        no_answer = "-"
        if result.common_error:
            missing = result.totals.errors or 0  # recorded without an answer (not unasked)
            no_answer = f"{missing}: {_short(result.common_error)}"
            if registry.get(registry.parse_spec(spec)[0]).kind not in REPLAYED:
                retryable.append((result.name, missing))
        info = result.store.run_info()
        status = standing.run_status(info, len(result.store.records()), len(test_set)) \
            if info is not None else standing.COMPLETE
        shown = result.name if status == standing.COMPLETE else f"{result.name} ({status})"
        rows.append((result.scores.mae is None, result.scores.mae or 0.0,
                     [*tables.score_row(shown, result.scores, result.totals,
                                        result.wall_s), no_answer]))
    print(f"test set {terminal(test_set.name)} ({len(test_set)} items, "
          f"{test_set.fingerprint[:19]}...)")
    if rows:
        print(tables.render([row for *_, row in sorted(rows, key=lambda r: r[:2])],
                            [*tables.HEADERS, "no answer (most common reason)"]))
    for name, reason in skipped:
        print(f"skipped {name}: {tables.short_reason(reason)}")
    if any(tables.short_reason(r) != r for _, r in skipped):
        print("(full reasons: `bench list --long`)")
    for name, missing in retryable:
        print(f"{terminal(name)}: {missing} item{'s' if missing != 1 else ''} without an "
              "answer; add --retry-errors to ask them again")
    if budget is not None:
        print(f"spent about ${budget.spent:,.4f} of --max-cost ${budget.limit:,.4f}")
    print(f"results in {args.results_dir}/")
    return EXIT_FAILED if failed else 0


def _short(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _dry_run(built: list[tuple[str, Any, dict[str, str]]], test_set: TestSet,
             limit: int | None) -> int:
    from bench import tables

    products = test_set.products()[: limit if limit is not None else None]
    rows: list[list[str]] = []
    notes: list[str] = []
    for _, predictor, _ in built:
        e = capabilities(predictor).estimate(products)
        reason = _why_not(predictor)
        if e is not None:
            cost = e.get("cost_usd")
            rows.append([predictor.name, str(e.get("requests", 0)), str(e.get("input_tokens", 0)),
                         str(e.get("output_tokens", 0)),
                         f"${fmt.fixed(cost, 4, commas=True)}" if cost is not None else "unknown",
                         reason or "ready"])
        else:
            rows.append([predictor.name, "0", "-", "-", "$0", reason or "local, no requests"])
        for part in (e or {}).get("breakdown") or ():  # a composite's parts (an ensemble's)
            cost = part.get("cost_usd")
            notes.append(f"  {predictor.name}: {part.get('member')} {part.get('part')}: "
                         f"{part.get('rows')} rows, {part.get('requests', 0)} requests, "
                         + (f"${cost:,.4f}" if cost is not None else "cost unknown"))
    print(f"dry run on {len(products)} items: nothing sent")
    print(tables.render(rows, ["predictor", "requests", "input tokens", "output tokens",
                               "est. cost", "status"]))
    if notes:
        print("\n".join(["what it would ask:", *notes]))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from bench import tables

    ctx = _context(args, with_test_set=False)
    rows = []
    for spec, entry in registry.expand(ctx):
        try:
            reason = _why_not(registry.build(spec, {}, ctx))
        except BenchError as exc:
            reason = str(exc)
        shown = reason if args.long or not reason else tables.short_reason(reason)
        here = "yes" if not reason else f"no: {shown}"
        if not entry.in_all:
            here += " (by name only: not in run all)"
        rows.append([spec, entry.kind, here, entry.summary])
    print(tables.render(rows, ["predictor", "kind", "runs here", "what"]))
    if not args.long and any(r[2].endswith(("…", "more)")) for r in rows):
        print("(shortened reasons: `bench list --long` for the full text)")
    return 0


def _stored(results_dir: Path, min_answered: float = standing.MIN_ANSWERED) -> list[Any]:
    """Every stored run, scored; none is a user mistake (nothing to report on)."""
    from bench.reports.collect import collect

    folder(results_dir)
    entries = collect(results_dir, min_answered=min_answered)
    if not entries:
        raise BenchError("no stored runs: run `bench run` first", results_dir)
    return entries


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench.reports import publish as leaderboard

    done = leaderboard.publish(args.results_dir, data_dir=args.data_dir,
                               charts=not args.no_charts, readme=args.update_readme,
                               workers=None, public=args.publish,
                               min_answered=args.min_answered)
    print(f"{'published' if args.publish else 'working'} board: {done.board}/"
          + ("" if args.publish else " (your runs; the published board is written by "
                                     "`make publish`)"))
    for path in done.files:
        print(f"{'unchanged' if path in done.unchanged else 'wrote'} {path}")
    if done.drawn is not None:
        print(f"charts: {done.drawn.drawn} drawn, {done.drawn.skipped} unchanged, "
              f"{done.drawn.removed} stale removed, under {done.board / 'charts'}")
    for ts in done.without_categories:
        print(f"{terminal(ts)}: test rows not found here, break-down by price band only "
              "(pass --data-dir for categories)")
    if done.readme_changed is not None:
        print(f"{'updated' if done.readme_changed else 'unchanged'}: {args.update_readme}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from bench import tables
    from bench.provenance import now

    entries = _stored(args.results_dir)
    rows, unwritten = [], []
    for e in entries:
        rows.append(tables.score_row(f"{e.marked} [{e.test_set}]", e.scores, e.info.totals))
        if e.info.metrics == e.scores:
            continue  # nothing new to store: the folder is left as it is
        try:
            e.store.write_run(replace(e.info, metrics=e.scores, rescored_at=now()))
        except OSError:  # read-only: the figures are on screen, the folder untouched
            unwritten.append(e.store.run_path)
    print(tables.render(rows))
    if unwritten:
        print(f"note: {len(unwritten)} run.json not updated (read-only), e.g. {unwritten[0]}; "
              "the figures above are current", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench import show

    entries = _stored(args.results_dir)
    test_set = show.shared_test_set(entries, args.a, args.b, args.test_set)
    a, b = (show.pick(entries, name, test_set) for name in (args.a, args.b))
    print(show.comparison(a, b))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from bench import breakdown, show

    if args.count < 1:
        raise BenchError(f"--count must be at least 1, not {args.count}")
    entries = _stored(args.results_dir, args.min_answered)
    entry = show.pick(entries, args.name, args.test_set, registry.parse_params(args.param))
    rows = breakdown.TestRows(args.data_dir).for_run(entry.info)
    entry.categories = breakdown.categories(rows)
    peers = sum(1 for e in entries if e.test_set == entry.test_set and e.ranked)
    print(show.report(entry, rows, args.count, show.colour_wanted(args.color, sys.stdout),
                      rank_of=peers))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    ctx = _context(args, with_test_set=False)
    params = registry.parse_params(args.param)
    predictor = registry.build(args.name, params, ctx)
    hooks = capabilities(predictor)
    fit = hooks.fit
    if fit is None:
        raise BenchError(f"predictor {args.name!r} is not trainable")
    examples = hooks.training_examples()
    if examples is None:
        examples = ctx.train_examples()[0]
    # Under torchrun / accelerate launch every process runs this; rank 0 speaks.
    main = os.environ.get("RANK", "0").strip() in ("", "0")
    saved_before = _model_dirs(ctx.models_dir)
    if main:
        print(f"training {predictor.name} on {len(examples)} examples (retrains even when a "
              "model is saved for these rows and parameters)", file=sys.stderr)
    fit(examples)
    if not main:
        return 0
    where = getattr(predictor, "model_dir", None)
    if where is not None:
        verb = "replaced the saved model" if Path(where) in saved_before else "saved the model"
        print(f"trained {predictor.name}: {verb} in {where}")
    else:
        print(f"trained {predictor.name}")
    cv = getattr(predictor, "cv_mae", None)
    if isinstance(cv, int | float):
        print(f"cross-validated MAE on the training rows: {fmt.money(cv)}")
    return 0


def _size(folders: Sequence[Path]) -> int:
    return sum(f.stat().st_size for m in folders for f in m.rglob("*") if f.is_file())


def _model_dirs(root: Path) -> set[Path]:
    """The saved models' folders (``<models dir>/<predictor>/<key>``)."""
    return {p for p in root.glob("*/*") if p.is_dir()} if root.is_dir() else set()


def cmd_human_export(args: argparse.Namespace) -> int:
    from bench.sheets import write_blank_sheet

    if args.output.exists() and not args.force:
        raise BenchError("exists; pass --force to overwrite", args.output)
    ctx = _context(args)
    assert ctx.test_set is not None
    count = write_blank_sheet(args.output, ctx.test_set.products())
    print(f"wrote {count} rows to {args.output}: fill in the 0s, then "
          f"`bench run human --param csv={args.output}`")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    ctx = Context()
    if args.action == "info":
        info = ctx.responses.info()
        print(f"{info['path']}: {info['entries']} responses, {info['bytes']:,} bytes")
        for name, count in sorted(info["by_predictor"].items()):
            print(f"  {name}: {count}")
        models = sorted(_model_dirs(ctx.models_dir))
        print(f"{ctx.models_dir}: {len(models)} fitted models, {_size(models):,} bytes "
              "(delete a folder to retrain that model)")
        for name in sorted({m.parent.name for m in models}):
            mine = [m for m in models if m.parent.name == name]
            print(f"  {name}: {len(mine)} ({_size(mine):,} bytes)")
    else:
        removed = ctx.responses.clear(args.predictor)
        if removed < 0:
            print(f"removed the damaged response cache {ctx.responses.path} "
                  f"({ctx.responses.damaged})")
        else:
            print(f"removed {removed} cached responses")
    return 0


def _build_site(args: argparse.Namespace) -> Path:
    """The site of the stored runs: the working one (RESULTS_DIR/local/site), another
    folder named by --output, or the published one with ``site --publish``."""
    from bench.site.writer import build

    publish = getattr(args, "publish", False)
    output = args.output or places.board_dir(args.results_dir, publish) / "site"
    if not publish:
        places.refuse_published(output, args.results_dir)
    built = build(args.results_dir, output, args.data_dir, min_answered=args.min_answered)
    print(f"site of {built.runs} runs ({', '.join(built.test_sets)}): {len(built.files)} files, "
          f"{built.bytes / 1e6:.1f} MB in {output}/ ({built.written} written, "
          f"{built.removed} stale removed); open {output / 'index.html'}", flush=True)
    return output


def cmd_site(args: argparse.Namespace) -> int:
    _build_site(args)
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from bench import view

    if not 0 <= args.port <= 65535:
        raise BenchError(f"--port must be 0..65535, not {args.port}")
    return view.serve(_build_site(args), args.port, open_browser=not args.no_browser,
                      results=args.results_dir)
