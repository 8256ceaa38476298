"""What a run records about where it ran: package versions, git commit, time,
and file paths written so they say nothing of the machine (relative to the
project, or to the home folder as ``~/...``)."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# Read from package metadata, never imported: recording versions must not load torch.
PACKAGES = (
    "pricer-bench", "numpy", "pandas", "huggingface_hub", "scikit-learn", "xgboost",
    "openai", "anthropic", "torch", "transformers", "peft", "bitsandbytes", "accelerate",
)
ROOT = Path(__file__).resolve().parent.parent


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    return dict(_versions())


@cache  # fixed for the life of the process: `run all` records them once per predictor
def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


@cache
def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def portable_path(path: str) -> str:
    """``path`` as recorded: relative to the project when inside it, ``~/...``
    when under the home folder, else relative to the project
    (``../shared/data/test.jsonl``); a URL (``hf://...``) as it is. Never the
    machine's absolute path; ``local_path`` reads it back."""
    if not path or "://" in path:
        return path
    absolute = Path(os.path.abspath(path))
    home = Path.home()
    if not absolute.is_relative_to(ROOT) and absolute.is_relative_to(home):
        return str(Path("~") / absolute.relative_to(home))
    return os.path.relpath(absolute, ROOT)


def local_path(recorded: str) -> Path:
    """A path recorded by ``portable_path`` (or an absolute one from older
    runs), on this machine."""
    path = Path(recorded).expanduser()
    return path if path.is_absolute() else ROOT / path


@cache
def cpu_model() -> str:
    """The processor's name (Linux: /proc/cpuinfo), else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
