#!/usr/bin/env bash
# The GPU fine-tune of SmolLM2-135M on the whole pool, for a machine with one
# GPU and no network (the device machine: at most 64 MiB carried per call).
#
#   bash bench/perf/finetune_gpu.sh pack     # here: fills .gpu-carry/ (git-ignored)
#   bash bench/perf/finetune_gpu.sh run [ARGS...]   # there: trains and scores
#
# `pack` puts in .gpu-carry/: the GGUF file in two parts under 64 MiB (with its
# sha256), the gguf package's wheel (pure Python, to read the file) and the
# data files. Carry `.gpu-carry/part1` in one call and `.gpu-carry/part2` in
# the next (a warm machine keeps what was carried); `run` joins the parts,
# checks the sha256, installs the gguf wheel when missing, and runs
#   python -m bench.perf.finetune --recipe gpu --device cuda --minutes 8 ...
# with the adapter and every run folder under $OUT (or /tmp/finetune-gpu).
# Extra ARGS go to bench.perf.finetune (e.g. --device cpu --param max_steps=1
# --param train_size=16 --train-only: the CPU check of this script).
set -euo pipefail
cd "$(dirname "$0")/../.."
CARRY=.gpu-carry
PY=${PYTHON:-python}

case "${1:-}" in
pack)
    gguf=$($PY -m predictors.qlora.wheels smollm2)
    data=${BENCH_DATA_DIR:-../shared/data/pricer}
    rm -rf "$CARRY" && mkdir -p "$CARRY/part1" "$CARRY/part2/data"
    split -b 60M -d "$gguf" "$CARRY/part"
    mv "$CARRY/part00" "$CARRY/part1/smollm2.gguf.00"
    mv "$CARRY/part01" "$CARRY/part2/smollm2.gguf.01"
    sha256sum "$gguf" | cut -d' ' -f1 > "$CARRY/part2/smollm2.gguf.sha256"
    basename "$gguf" > "$CARRY/part2/smollm2.gguf.name"
    $PY -m pip download --quiet --no-deps -d "$CARRY/part2" gguf
    cp "$data"/test.jsonl "$data"/train.jsonl "$data"/train-extra.jsonl "$CARRY/part2/data/"
    du -sh "$CARRY"/part1 "$CARRY"/part2
    ;;
run)
    shift
    out=${OUT:-/tmp/finetune-gpu}
    export BENCH_CACHE_DIR=${BENCH_CACHE_DIR:-$out/cache}
    # Where predictors.qlora.wheels looks for the file (its cache path).
    target=$($PY -c "from predictors.qlora.wheels import path; print(path('smollm2'))")
    if [ ! -f "$target" ]; then
        mkdir -p "$(dirname "$target")"
        cat "$CARRY"/part1/smollm2.gguf.00 "$CARRY"/part2/smollm2.gguf.01 > "$target.part"
        echo "$(cat "$CARRY"/part2/smollm2.gguf.sha256)  $target.part" | sha256sum -c -
        mv "$target.part" "$target"
    fi
    $PY -c "import gguf" 2>/dev/null || $PY -m pip install --quiet --no-deps "$CARRY"/part2/gguf-*.whl
    $PY -m bench.perf.finetune --recipe gpu --device cuda --minutes 8 \
        --data-dir "$CARRY/part2/data" --gguf "$target" --out "$out" "$@"
    ;;
*)
    sed -n '2,17p' "$0"
    exit 2
    ;;
esac
