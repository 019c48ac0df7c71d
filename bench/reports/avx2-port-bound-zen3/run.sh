#!/bin/bash
# run.sh: every binary of build.sh in OUT, variants alternated process by process, 3 times (each prints its
# minimum over its own calls); the tables of README.md take the minimum of the three.
out=${OUT:-/tmp/avx2-port-bound}
# ids (kernels/mx/mx_element.cuh): 0 fp8_e4m3, 2 fp6_e3m2, 3 fp6_e2m3, 4 fp4_e2m1, 5 int8, 6 int6, 7 int4, 8 int2
for args in "7 8" "5 7" "5 6" "6 8" "0 4" "0 3" "2 4" "7 8 2 16384" "0 4 2 16384" "0 3 2 16384"; do
  for i in 1 2 3; do
    for v in base tree storeonly movemask pack6; do echo "convert-$v: $("$out/convert-$v" $args)"; done
  done
done
for args in "5 0" "2 0" "4 0" "0 0" "5 1" "2 1" "4 1" "0 1" "2 0 2 4096" "2 1 2 4096"; do
  for i in 1 2 3; do
    for v in base amax8 noamax nopack pack6 bf16shift; do echo "quantize-$v: $("$out/quantize-$v" $args)"; done
  done
done
