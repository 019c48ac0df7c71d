#!/bin/bash
# The binaries of this report, in OUT (default /tmp/avx2-port-bound): the AVX2 translation units of csrc at
# COMMIT (default 4a49e16, the sources the patches were made against), with CMakeLists.txt's flags for the
# avx2 build, plain and with each patch beside this script, each linked to one of the two timing mains.
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel)
out=${OUT:-/tmp/avx2-port-bound}
commit=${COMMIT:-4a49e16}
mkdir -p "$out"
tree() {  # tree NAME [PATCH]: the sources at COMMIT, patched
  rm -rf "${out:?}/$1"
  mkdir -p "$out/$1"
  git -C "$root" archive "$commit" csrc kernels | tar -x -C "$out/$1"
  if [ -n "$2" ]; then patch -s -d "$out/$1" -p1 < "$here/$2"; fi
}
bin() {  # bin NAME TREE TU MAIN [FLAGS]
  g++ -O3 -fno-math-errno -march=x86-64-v3 -fopenmp -DSLIMOPS_ISA=avx2 $5 -I"$out/$2" -c "$out/$2/$3" \
    -o "$out/$1.o" 2>/dev/null
  g++ -O2 -I"$out/$2" "$here/$4" "$out/$1.o" -fopenmp -o "$out/$1"
}
tree base
tree report report-variants.patch
tree amax8 amax8.patch
tree ablation quantize-ablation.patch
tree pack6 pack6-overlap.patch
tree bf16shift bf16-widen-by-shift.patch
ss=csrc/slicescale/slicescale_cpu.cpp
mx=csrc/mx/mx_cpu.cpp
bin convert-base base $ss convert_report.cpp &
bin convert-tree report $ss convert_report.cpp &
bin convert-storeonly report $ss convert_report.cpp -DNOREDUCE &
bin convert-movemask report $ss convert_report.cpp "-DMOVEMASK -DNOREDUCE" &
bin convert-pack6 pack6 $ss convert_report.cpp &
wait
bin quantize-base base $mx quantize.cpp &
bin quantize-amax8 amax8 $mx quantize.cpp &
bin quantize-noamax ablation $mx quantize.cpp -DNOAMAX &
bin quantize-nopack ablation $mx quantize.cpp -DNOPACK &
wait
bin quantize-pack6 pack6 $mx quantize.cpp &
bin quantize-bf16shift bf16shift $mx quantize.cpp &
wait
ls "$out"
