#!/usr/bin/env bash
# One lent GPU session's measurements (issue 31), as one short script for the device machine, which has torch,
# torchvision and lightning but not every dependency, and no network:
#   carry: .whl/ (jsonargparse, docstring-parser, typeshed-client wheels: pip download them here) and a patch folder
#   PATCHES (Negative/, Positive/; the tree travels whole under 64 MiB, so a subset: every 3rd sound, every 6th crack
#   patch of concrete-crack-extra is 24 MB); the research photos do not fit, so the segmenter's rows run on 300
#   synthetic 448-px photos made there.
#   PATCHES=.carry/patches TOTAL_S=540 bash bench/gpu_session.sh        # writes into $OUT (the device tool's)
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-session}
mkdir -p "$OUT"
START=$(date +%s)
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc
  python3 -c "import torch, lightning; print(torch.__version__, lightning.__version__, torch.cuda.is_available())"; } 2>&1 | tee "$OUT/machine.txt"
PHOTOS=/tmp/photos300
python3 -m crack_lightning synth --backgrounds "${PATCHES:?PATCHES: a folder with Negative/ and Positive/}/Negative" \
  --output $PHOTOS --count 300 --size 448 --seed 1 > /dev/null 2>&1 || exit 1
# segment.yaml's split groups photos by the name before the first '-' or '.': give each synthetic photo its own group
(cd $PHOTOS && for f in images/*.jpg; do n=$(basename "$f" .jpg); mv "$f" "images/p${n#synth-}.jpg"; mv "masks/$n.png" "masks/p${n#synth-}.png"; done)
LEFT=$(( ${TOTAL_S:-540} - ($(date +%s) - START) ))
echo "bench/gpu.py gets $LEFT s"
timeout $LEFT python3 bench/gpu.py --patches "$PATCHES" --photos $PHOTOS --json "$OUT/gpu.json" --profile /tmp/prof ${BENCH_ARGS:-} 2>&1 | tee "$OUT/gpu.log" | grep -v Warning
echo "bench rc=${PIPESTATUS[0]} total $(( $(date +%s) - START )) s" | tee -a "$OUT/gpu.log"
tar czf "$OUT/prof.tgz" -C /tmp prof 2>/dev/null
