#!/usr/bin/env bash
# The gradient-leakage figures of docs/experiment-gradient-leakage.md (issue 15), as a sequence of
# `rp-onnx attack gradient-leakage` runs on the PyTorch-exported fixtures, Fashion-MNIST train
# images from index 0. Each run writes one JSON file into OUT (default rp-experiments/gradient-leakage).
#   LANE=attacks   the attack table: LeNet IG, ResNet-8 IG (also with TV 1e-4), undefended and DP (C 1, sigma 0.1)
#   LANE=schedules the Wei-Liu comparison: fixed sigma vs each dynamic schedule at steps 0, T/4, T/2, 3T/4, T-1
#   LANE=dlg       LeNet DLG, undefended and DP
# Usage: LANE=attacks bash scripts/experiments/gradient-leakage.sh [OUT]
set -euo pipefail
OUT=${1:-rp-experiments/gradient-leakage}
mkdir -p "$OUT"
DATA=${DATA:-../shared/data/fashion-mnist}
LENET=test/fixtures/lenet-sigmoid-dlg-op13.onnx
RESNET=test/fixtures/resnet8-nonorm-op13.onnx
run() { local name=$1; shift; local t0=$SECONDS
  nice -n 10 node --import tsx cli/main.ts attack gradient-leakage "$@" --data "$DATA" --threads 1 --progress-every 0 --json > "$OUT/$name.json"
  echo "$name: $((SECONDS - t0)) s wall" >&2; }
DP=(--dp --max-grad-norm 1 --noise-multiplier 0.1)
case ${LANE:-attacks} in
  attacks)
    run lenet-ig $LENET --index 0 --count 5 --method inverting-gradients
    run lenet-ig-dp $LENET --index 0 --count 5 --method inverting-gradients --iterations 1000 "${DP[@]}"
    run resnet8-ig $RESNET --index 0 --count 5 --method inverting-gradients --iterations 1000
    run resnet8-ig-tv $RESNET --index 0 --count 5 --method inverting-gradients --iterations 1000 --tv-weight 1e-4
    run resnet8-ig-dp $RESNET --index 0 --count 5 --method inverting-gradients --iterations 1000 "${DP[@]}"
    ;;
  dlg)
    run lenet-dlg $LENET --index 0 --count 5 --method dlg --iterations 1000
    run lenet-dlg-dp $LENET --index 0 --count 5 --method dlg --iterations 1000 "${DP[@]}"
    ;;
  schedules)
    # sigma_0 0.01 decaying to 1e-4 over T = 1000 steps (the attack's transition lies in between);
    # 'constant' is the fixed-sigma baseline.
    # LeNet: 2 images, 500 iterations; ResNet-8: 1 image, 200 iterations (the CPU budget of the run).
    for model in ${MODELS:-lenet resnet8}; do
      if [ $model = lenet ]; then m=$LENET; it=500; n=2; else m=$RESNET; it=200; n=1; fi
      for s in constant linear staircase exponential cyclic; do
        run schedule-$model-$s $m --index 0 --count $n --method inverting-gradients --iterations $it \
          --dp --max-grad-norm 1 --noise-multiplier 0.01 --noise-schedule $s --noise-end-ratio 0.01 --schedule-steps 1000
      done
    done
    ;;
esac
