"""docs/quickstart.ipynb ships executed, so a code host shows its tables and
charts; its outputs come out the same on every run, so executing it again
changes no byte. This module executes it (a real Jupyter kernel on this
interpreter, offline, against the data folder, into an empty results folder)
and keeps what is the same every time: the progress bars (live widgets and
stderr, with their timings) and the kernel's version details are left out.

    BENCH_TEST_DATA_DIR=../shared/data/pricer python -m tests.quickstart_notebook

rewrites the committed notebook; tests/test_notebook.py checks it is current.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "quickstart.ipynb"
KERNEL = "pricer-bench-test"
WIDGET = "application/vnd.jupyter.widget-view+json"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute(data_dir: Path, work: Path) -> Any:
    """The notebook executed top to bottom by a real kernel (this interpreter,
    this checkout's code), offline; its runs go to ``work / "results"``."""
    import nbclient
    import nbformat

    spec = work / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "pricer-bench tests", "language": "python"}))
    env = {"JUPYTER_PATH": str(work / "jupyter"), "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
           "IPYTHONDIR": str(work / "ipython"),
           "PYTHONPATH": os.pathsep.join(
               p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
           "BENCH_DATA_DIR": str(data_dir), "BENCH_RESULTS_DIR": str(work / "results"),
           "BENCH_CACHE_DIR": str(work / "cache"), "HF_HUB_OFFLINE": "1"}
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (work / "docs").mkdir()
    with _environment(env):
        client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=300,
                                         record_timing=False,
                                         resources={"metadata": {"path": str(work / "docs")}})
        client.execute()
    return nb


def _kept(output: dict[str, Any]) -> bool:
    """Not a progress bar: a widget (a random id, a live view) or stderr (timings)."""
    if output.get("output_type") == "stream":
        return output.get("name") != "stderr"
    return WIDGET not in output.get("data", {})


def normalised(executed: Any) -> Any:
    """The committed form of an executed notebook: the source's own metadata
    (no kernel versions, no widget state), each code cell's lasting outputs."""
    import nbformat

    source = nbformat.read(NOTEBOOK, as_version=4)
    out = copy.deepcopy(source)
    for cell, done in zip(out.cells, executed.cells, strict=True):
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in done.outputs if _kept(o)]
        cell.execution_count = done.execution_count
        cell.metadata.pop("execution", None)
    return out


def text(nb: Any) -> str:
    import nbformat

    return nbformat.writes(nb) + "\n"


def main() -> int:
    data_dir = Path(os.environ.get("BENCH_TEST_DATA_DIR",
                                   ROOT.parent / "shared" / "data" / "pricer")).resolve()
    if not (data_dir / "test.jsonl").exists():
        print(f"error: no data folder at {data_dir} (set BENCH_TEST_DATA_DIR)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="quickstart-") as tmp:
        written = text(normalised(execute(data_dir, Path(tmp))))
    changed = written != NOTEBOOK.read_text()
    NOTEBOOK.write_text(written)
    print(f"{'wrote' if changed else 'unchanged'} {NOTEBOOK.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
