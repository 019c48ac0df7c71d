#!/usr/bin/env bash
# The prepared GPU check (issue 15): five steps in priority order, each under its own time cap, the
# whole bounded at 500 s; each step writes its log under $OUT as it finishes and a line to
# $OUT/summary.txt. A step that fails or runs out of time is recorded, and the next one still runs.
#
#   1 build     pip install --no-build-isolation -e . with SLIMOPS_CUDA_ARCHS=90a, the machine's torch
#   2 check     slimops check --device cuda
#   3 tests     the tests that touch CUDA (pytest -p cuda_select, -n 8 when pytest-xdist is there)
#   4 memcheck  compute-sanitizer memcheck over small cases of each family's CUDA kernels
#   5 bench     slimops bench mxgemm at 4096 x 14336 against cuBLAS, then every suite --device cuda --quick,
#               kernels and eager peers (the reports as $OUT/bench.tgz)
#   6 tiles     the Triton mx_linear tile sweep (bench/mxgemm/triton_tiles.py, $OUT/tiles.json), if time is left
#
# Usage: bash bench/gpu/check.sh [--dry-run]
#   --dry-run  on a machine without a GPU: each step's real command is printed in its log and a CPU
#              substitute runs instead (the installed build, check --device cpu, the CUDA test selection
#              collected, the memcheck drivers on CPU without the sanitizer, a quick CPU bench).
# Environment: OUT (default results/gpu-check), PYTHON (default python3; .venv/bin/python in a dry run when
#   present), SLIMOPS_GPU_TOTAL_S (500), SLIMOPS_GPU_CAP_<STEP>_S (each step's cap, below), SLIMOPS_GPU_STEPS
#   (the steps to run, default "build check tests memcheck bench").
# Exit status: 0 when every step that ran passed, 1 otherwise. bench/README.md says how to run it on
# the device machine.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT=${OUT:-$ROOT/results/gpu-check}
mkdir -p "$OUT"
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ $DRY = 1 ] && [ -x .venv/bin/python ]; then PY=$ROOT/.venv/bin/python
else PY=python3; fi
TOTAL=${SLIMOPS_GPU_TOTAL_S:-500}
STEPS=${SLIMOPS_GPU_STEPS:-build check tests memcheck bench tiles}
START=$(date +%s)
SUMMARY=$OUT/summary.txt
WORK=$(mktemp -d /tmp/slimops-gpu-check.XXXXXX)
export ROOT PY DRY OUT WORK PYTHONUNBUFFERED=1
: > "$SUMMARY"
{
    echo "slimops GPU check $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
    echo "dry run: $DRY; python: $PY; budget ${TOTAL}s"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
} >> "$SUMMARY"

cap() {  # a step's cap in seconds: SLIMOPS_GPU_CAP_<STEP>_S or the default
    local var="SLIMOPS_GPU_CAP_$(echo "$1" | tr a-z A-Z)_S"
    echo "${!var:-$2}"
}

FAILED=0
N=0
step() {  # step NAME DEFAULT_CAP FUNCTION: run FUNCTION under min(cap, time left), record how it ended
    local name=$1 limit
    limit=$(cap "$1" "$2")
    N=$((N + 1))
    local log="$OUT/$N-$name.log"
    case " $STEPS " in
        *" $name "*) ;;
        *) echo "$N $name: not asked for (SLIMOPS_GPU_STEPS)" >> "$SUMMARY"; return ;;
    esac
    local left=$((START + TOTAL - $(date +%s)))
    if [ "$left" -lt 5 ]; then
        echo "$N $name: not run, the ${TOTAL}s budget is spent" >> "$SUMMARY"; FAILED=1; return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== step $N $name (cap ${limit}s, dry run $DRY)" > "$log"
    local t0 rc status
    t0=$(date +%s)
    timeout -k 10 "$limit" bash -c "$3" >> "$log" 2>&1
    rc=$?
    case $rc in
        0) status=ok ;;
        124|137) status="TIMEOUT after ${limit}s"; FAILED=1 ;;
        *) status="FAILED (exit $rc)"; FAILED=1 ;;
    esac
    echo "== $status" >> "$log"
    echo "$N $name: $status in $(($(date +%s) - t0))s (log $(basename "$log"))" >> "$SUMMARY"
}

show() { echo "\$ $*"; }  # the command, in the log, before it runs (or instead, in a dry run)

# ---------------------------------------------------------------------------------------- the steps
build() {
    export SLIMOPS_CUDA_ARCHS=90a CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
    show "$PY" -m pip install --no-build-isolation --no-deps --no-index -v -e .
    if [ "$DRY" = 1 ]; then
        echo "(dry run: the build already installed here instead)"
    else
        command -v nvcc || ls /usr/local/cuda/bin/nvcc || echo "no nvcc on PATH: slimops._C_cuda will not be built"
        export PATH=$PATH:/usr/local/cuda/bin
        "$PY" -m pip install --no-build-isolation --no-deps --no-index -v -e . || return 1
    fi
    local built="native_cuda_built"
    [ "$DRY" = 1 ] && built="native_cpu_built"
    "$PY" -m slimops info > "$WORK/info.txt" || { cat "$WORK/info.txt"; return 1; }
    cat "$WORK/info.txt"
    grep -Eq "^$built +True" "$WORK/info.txt" || { echo "slimops info does not say $built True"; return 1; }
}

check() {
    local args="--device cuda --jobs 12"  # 12 workers compile the Triton and NVRTC kernels side by side
    [ "$DRY" = 1 ] && args="--device cpu ${SLIMOPS_GPU_DRY_CHECK:---family slicescale rowq}"
    show "$PY" -m slimops check $args
    "$PY" -m slimops check $args
}

tests() {
    local opts=""
    "$PY" -c "import xdist" 2>/dev/null && opts="-n 8"
    "$PY" -c "import pytest_timeout" 2>/dev/null && opts="$opts --timeout 60"
    # -v: one line per test as it ends, so a log cut by the cap still says what ran
    local cmd=("$PY" -m pytest -p cuda_select -v -rfE --durations=15 --continue-on-collection-errors $opts tests)
    [ "$DRY" = 1 ] && cmd=("$PY" -m pytest -p cuda_select -q --collect-only tests)
    show "${cmd[@]}"
    PYTHONPATH=$ROOT/bench/gpu${PYTHONPATH:+:$PYTHONPATH} "${cmd[@]}"
}

memcheck() {
    local san=""
    if [ "$DRY" = 0 ]; then
        san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer \
              /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)
        [ -n "$san" ] || { echo "compute-sanitizer not found (PATH, /usr/local/cuda)"; return 1; }
        # no caching allocator: each tensor is its own cudaMalloc, so the sanitizer sees an access past its end
        export PYTORCH_NO_CUDA_MEMORY_CACHING=1
        san="$san --tool memcheck --error-exitcode 99 --print-limit 20"
    fi
    local opts="--device cuda"
    [ "$DRY" = 1 ] && opts="--device cpu --max-cases 12"
    local f pids=()
    for f in mx slicescale gat gatv2 rowq; do  # the five drivers at once (one GPU, 16 cores)
        show $san "$PY" bench/gpu/memcheck_$f.py $opts > "$WORK/memcheck_$f.log"
        { $san "$PY" bench/gpu/memcheck_$f.py $opts; echo "-- memcheck_$f: exit $?"; } >> "$WORK/memcheck_$f.log" 2>&1 &
        pids+=($!)
    done
    for f in "${pids[@]}"; do wait "$f"; done
    [ "$(cat "$WORK"/memcheck_*.log | grep -c -- '^-- memcheck_.*: exit 0$')" = 5 ]  # every driver passed
}

bench() {
    # slimops' kernels, the eager reference, the roofline and PyG: no torch.compile provider fits the cap
    local args=(--device cuda --quick --providers slimops-native slimops-nvrtc slimops-triton reference-eager
                alloc-copy slimops reference pyg)
    [ "$DRY" = 1 ] && args=(slicescale --device cpu --quick --providers slimops-native)
    # first the fused MX matmul's GPU rows (issue 16): decode-sized and prefill-sized M at 4096 x 14336, the
    # 4-bit and 8-bit formats, bf16, against cuBLAS (nn.Linear) and dequantize + F.linear
    local mxg=(mxgemm --device cuda --ms 1 16 4096 --shapes 4096x14336 --fmts mxint4 mxfp4_e2m1 mxint8
               --dtypes bfloat16 --providers slimops-triton nn-linear dequant-linear)
    [ "$DRY" = 1 ] && mxg=(mxgemm --device cpu --quick --providers slimops-native nn-linear)
    show "$PY" -m slimops bench "${mxg[@]}" --out "$WORK/bench"
    "$PY" -m slimops bench "${mxg[@]}" --out "$WORK/bench"
    show "$PY" -m slimops bench "${args[@]}" --out "$WORK/bench"
    "$PY" -m slimops bench "${args[@]}" --out "$WORK/bench"
}

tiles() {
    # the Triton mx_linear kernel's tile sweep (bench/mxgemm/triton_tiles.py), for GPU_TILES
    local args=(--out "$OUT/tiles.json" --budget-s $(( $(cap tiles 150) - 20 )))
    [ "$DRY" = 1 ] && { show "$PY" bench/mxgemm/triton_tiles.py "${args[@]}"; echo "(dry run: needs a GPU)"; return 0; }
    show "$PY" bench/mxgemm/triton_tiles.py "${args[@]}"
    "$PY" bench/mxgemm/triton_tiles.py "${args[@]}"
}

export -f build check tests memcheck bench tiles show
# caps (s), in priority order, within the 500 s budget (the device machine has 16 cores). On the H200 the build
# took 98 s and check ran out of a 70 s cap compiling its Triton kernels: check may now use the build's
# leftover time (each step gets min(cap, time left)).
step build 220 build
step check 190 check
step tests 90 tests
step memcheck 50 memcheck
cat "$WORK"/memcheck_*.log >> "$OUT/4-memcheck.log" 2>/dev/null  # each driver's output, also after a timeout
step bench 70 bench
step tiles 150 tiles
# the reports the suites finished, also when the step ran out of time
[ -d "$WORK/bench" ] && tar -czf "$OUT/bench.tgz" -C "$WORK" bench && echo "bench reports: bench.tgz" >> "$SUMMARY"
verdict=$([ $FAILED = 0 ] && echo 'every step passed' || echo 'some step failed')
echo "total $(($(date +%s) - START))s; $verdict" >> "$SUMMARY"
cat "$SUMMARY"
rm -rf "$WORK"
exit $FAILED
