"""The notebook API (``bench.evaluate`` / ``compare`` / ``leaderboard``): the
quickstart notebook executed by a real Jupyter kernel, the README's notebook
block run as a script, and the identity rules of a function's run, checked in
real IPython cells."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_synthetic_test_file

NOTEBOOK = ROOT / "docs" / "quickstart.ipynb"


# -- the quickstart notebook, in a real kernel -----------------------------------


def _text(cell: dict) -> str:
    out = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            out.append(o["text"])
        elif "data" in o:
            out.append(o["data"].get("text/plain", ""))
    return "".join(out)


def _by_tag(nb: dict, tag: str) -> dict:
    return next(c for c in nb["cells"] if tag in c.get("metadata", {}).get("tags", []))


@pytest.fixture(scope="module")
def executed(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The quickstart notebook, executed top to bottom by a real kernel, offline."""
    pytest.importorskip("nbclient")
    pytest.importorskip("nbformat")
    from tests import quickstart_notebook

    tmp = tmp_path_factory.mktemp("notebook")
    nb = quickstart_notebook.execute(data_dir, tmp)
    nb["committed_form"] = quickstart_notebook.text(quickstart_notebook.normalised(nb))
    nb["results_dir"] = str(tmp / "results")
    return nb


def test_the_notebook_ships_executed_and_running_it_changes_no_byte(executed: dict) -> None:
    """On a code host the committed notebook shows its outputs; executing it
    again gives the same file (regenerate: python -m tests.quickstart_notebook)."""
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] and c["execution_count"] for c in code
                        if "predictor" not in c["metadata"].get("tags", []))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert executed["committed_form"] == NOTEBOOK.read_text(), \
        "docs/quickstart.ipynb is stale: run `python -m tests.quickstart_notebook`"
    for path in (str(Path.home()), str(ROOT), "/tmp/"):
        assert path not in NOTEBOOK.read_text()


def test_quickstart_reproduces_the_published_runs(executed: dict) -> None:
    text = _text(_by_tag(executed, "references"))
    assert "reference:llama-3.1-8b-qlora-pricer on pricer-test: MAE $46.66" in text
    assert "reference:gpt-4o-2024-08-06 on pricer-test: MAE $75.92" in text
    assert "250/251 answered" in text
    assert "251 products" in _text(_by_tag(executed, "load"))


def test_quickstart_shows_the_run_inline(executed: dict) -> None:
    outputs = _by_tag(executed, "evaluate")["outputs"]
    [out] = [o for o in outputs if o["output_type"] == "execute_result"]
    page = out["data"]["text/html"]
    # the runner's progress bar, as a Jupyter widget (tqdm.auto with ipywidgets)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               and "words:" in o["data"]["text/plain"] for o in outputs)
    assert "data:image/png;base64," in page  # the chart, embedded
    assert "MAE" in page and "251/251" in page
    # colour-coded guesses: every item, in the three tester colours
    assert page.count("<tr style='color:") >= 251
    assert "color:#2ca02c" in page and "color:#d62728" in page
    chart = [o for o in _by_tag(executed, "chart")["outputs"] if "data" in o]
    assert chart and chart[0]["data"]["image/png"]  # a figure, drawn as a PNG
    import base64

    png = base64.b64decode(chart[0]["data"]["image/png"])
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_quickstart_compares_and_tabulates(executed: dict) -> None:
    fine_tune = _text(_by_tag(executed, "compare-fine-tune"))
    assert "(B) on pricer-test: 250 items both answered" in fine_tune
    assert "B reference:llama-3.1-8b-qlora-pricer" in fine_tune and "$46.66" in fine_tune
    assert "95% paired bootstrap interval" in fine_tune
    assert "$75.92" in _text(_by_tag(executed, "compare-gpt-4o"))
    assert "(251, 8)" in _text(_by_tag(executed, "table"))
    worst = _by_tag(executed, "worst")["outputs"][0]["data"]["text/html"]
    assert worst.count("</tr>") == 11  # header + ten misses
    board = _text(_by_tag(executed, "leaderboard"))
    for name in ("reference:llama-3.1-8b-qlora-pricer", "reference:gpt-4o-2024-08-06", "words"):
        assert name in board
    # the notebook's run joined the results folder the CLI reads
    runs = list(Path(executed["results_dir"]).glob("pricer-test/words-*/run.json"))
    assert len(runs) == 1


def test_no_cell_raised_or_warned(executed: dict) -> None:
    for cell in executed["cells"]:
        for o in cell.get("outputs", []):
            assert o["output_type"] != "error", o
            if o["output_type"] == "stream" and o["name"] == "stderr":
                assert "Warning" not in o["text"], o["text"]


# -- the README's notebook block -------------------------------------------------


def readme_notebook_block() -> str:
    """The first code block after the Quickstart section."""
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Quickstart")
    after = text.index("\n## ", start + 1)
    block = re.search(r"```(\w+)\n(.*?)```", text[after:], re.S)
    assert block is not None
    assert block.group(1) == "python"
    return block.group(2)


def test_readme_notebook_block_runs(data_dir: Path, tmp_path: Path) -> None:
    code = readme_notebook_block()
    assert "bench.evaluate(" in code
    env = {**os.environ, "BENCH_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("BENCH_RESULTS_DIR", None)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.search(r"on pricer-test: MAE \$[\d,.]+ \[\$", done.stdout), done.stdout
    # outside a checkout, the per-user results folder (bench.places), as the CLI's
    assert list(tmp_path.glob("data/pricer-bench/results/pricer-test/*/predictions.jsonl"))


# -- identity: the same function is one run, an edited one a new run -------------


CELL = '''
import bench

def guess(prompt: str) -> float:
    CALLS.append(prompt)  # {comment}
    return {body}

run = bench.evaluate(guess, test=TEST, results_dir=RESULTS, progress=False)
'''


@pytest.fixture()
def shell(tmp_path: Path):
    """A real IPython shell running cells (IPython keeps each cell's source)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    test_file = write_synthetic_test_file(tmp_path / "items.jsonl")
    shell.user_ns.update(TEST=str(test_file), RESULTS=str(tmp_path / "results"), CALLS=[])
    yield shell
    InteractiveShell.clear_instance()


def _cell(shell, body: str, comment: str = "") -> object:
    result = shell.run_cell(CELL.format(body=body, comment=comment))
    result.raise_error()
    return shell.user_ns["run"]


def test_same_function_twice_is_one_run(shell, tmp_path: Path) -> None:
    calls = shell.user_ns["CALLS"]
    first = _cell(shell, "50.0")
    assert first.predicted == 12 and len(calls) == 12
    again = _cell(shell, "50.0")  # the same cell run again: a new function object
    assert again.predicted == 0 and len(calls) == 12  # nothing asked again
    assert again.run_dir == first.run_dir and again.mae == first.mae
    comment = _cell(shell, "50.0", comment="an edited comment is not an edited function")
    assert comment.run_dir == first.run_dir and len(calls) == 12


def test_edited_function_is_a_new_run(shell, tmp_path: Path) -> None:
    import bench

    calls = shell.user_ns["CALLS"]
    first = _cell(shell, "50.0")
    edited = _cell(shell, "float(len(prompt)) / 10")  # edited in place, same name
    assert edited.predicted == 12 and len(calls) == 24
    assert edited.run_dir != first.run_dir and edited.name == first.name == "guess"
    assert edited.mae != first.mae
    assert {r["guess"] for r in first.to_pandas().to_dict("records")} == {50.0}
    assert len(list((tmp_path / "results").glob("*/guess-*/run.json"))) == 2
    # the leaderboard shows the latest version, with its own figures
    board = bench.leaderboard(tmp_path / "results")
    from bench.reports import publish

    assert callable(publish.publish) and callable(bench.leaderboard)
    assert list(board["predictor"]) == ["guess"]
    assert board["mae"][0] == pytest.approx(edited.mae)
    back = _cell(shell, "50.0")  # the first version again: its stored run, nothing asked
    assert back.run_dir == first.run_dir and back.predicted == 0 and len(calls) == 24


def test_without_source_the_bytecode_decides() -> None:
    from bench.functions import code_digest

    def compiled(body: str) -> object:
        namespace: dict = {}
        exec(compile(f"def f(prompt):\n    return {body}\n", "<no file>", "exec"), namespace)
        return namespace["f"]

    one, two, other = compiled("1.5 * 2"), compiled("1.5 * 2"), compiled("1.5 * 3")
    assert code_digest(one) == code_digest(two)
    assert code_digest(one)[1] == "bytecode"
    assert code_digest(one)[0] != code_digest(other)[0]


def test_what_a_function_takes(tmp_path: Path) -> None:
    from bench import BenchError, Product
    from bench.functions import NotebookFunction, takes_of

    def by_annotation(x: str) -> float: return 1.0  # noqa: E704
    def by_name(prompt): return 1.0  # noqa: E704
    def of_product(item): return 1.0  # noqa: E704
    def typed(p: Product) -> float: return 1.0  # noqa: E704

    assert takes_of(by_annotation) == takes_of(by_name) == "prompt"
    assert takes_of(of_product) == takes_of(typed) == "product"
    with pytest.raises(BenchError, match="name="):
        NotebookFunction(lambda p: 1.0)
    assert NotebookFunction(lambda p: 1.0, name="one").name == "one"
    assert NotebookFunction(of_product, takes="prompt").takes == "prompt"


def test_functions_of_products_params_and_objects(tmp_path: Path) -> None:
    import bench
    from bench import BasePredictor, Prediction, Product

    test_file = write_synthetic_test_file(tmp_path / "items.jsonl")
    seen: list[object] = []

    def per_char(product: Product, rate: float = 1.0) -> float | None:
        seen.append(product)
        return None if product.id == 0 else rate * len(product.title)

    run = bench.evaluate(per_char, params={"rate": 0.5}, test=test_file,
                         results_dir=tmp_path / "r", progress=False)
    assert all(isinstance(p, Product) for p in seen)
    table = run.to_pandas()
    assert list(table.columns) == ["id", "title", "category", "truth", "guess", "error",
                                   "band", "reason"]
    assert table.shape == (12, 8) and run.answered == 11 and run.total == 12
    assert table.loc[0, "reason"] == "no answer" and table["guess"].isna().sum() == 1
    assert table.loc[1, "guess"] == 0.5 * len(table.loc[1, "title"])
    other = bench.evaluate(per_char, params={"rate": 0.25}, test=test_file,
                           results_dir=tmp_path / "r", progress=False)
    assert other.run_dir != run.run_dir  # parameters are part of the identity

    class Fixed(BasePredictor):
        name = "fixed-40"

        def predict(self, products):
            return [Prediction(price=40.0) for _ in products]

    fixed = bench.evaluate(Fixed(), test=test_file, results_dir=tmp_path / "r", limit=5,
                           progress=False)
    assert fixed.total == 5 and len(fixed.to_pandas()) == 5
    comparison = bench.compare(run, "fixed-40", results_dir=tmp_path / "r")
    assert comparison.paired.items == 4  # items 1..4: both answered
    assert "per-char (A) vs fixed-40 (B)" in repr(comparison)


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    import bench

    test_file = write_synthetic_test_file(tmp_path / "items.jsonl")
    with pytest.raises(bench.BenchError, match="limit must be at least 1"):
        bench.evaluate(lambda p: 1.0, name="x", limit=0, test=test_file)
    with pytest.raises(bench.BenchError, match="unknown predictor 'no-such-thing'"):
        bench.evaluate("no-such-thing", test=test_file, results_dir=tmp_path)
    with pytest.raises(bench.BenchError, match="no stored run"):
        bench.compare("a", "b", results_dir=tmp_path / "empty")


def test_importing_bench_stays_light() -> None:
    code = ("import sys, bench; bench.evaluate, bench.compare, bench.leaderboard; "
            "print(sorted(m for m in ('pandas', 'matplotlib', 'torch', 'sklearn') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
