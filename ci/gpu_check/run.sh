#!/usr/bin/env bash
# One call of the `device` tool (a lent GPU machine), prepared by ci/gpu_check/prepare.sh:
#   run: BUDGET=520 bash ci/gpu_check/run.sh      carry: [".gpu"]      timeout_s: 600
# Installs the carried wheels, runs a gate notebook through `cvkit run` on CUDA (stops here if it fails, so a second
# try still fits), then benchmarks/train_speed.py alone on the machine (SPEED=0 skips it), then every lecture
# notebook's full profile (or ONLY=name,name), JOBS at a time, killing what still runs at the deadline, then a
# summary. SMOKE=1 runs ci/full_smoke.py (every full-profile cell with tiny sizes) instead of the full profiles, and
# TESTS=1 first runs the test suite's CUDA-only tests (pytest from the carried wheels). Checkpoints in .gpu/ckpt/ are
# put where the notebooks resume from them. What comes back ($OUT, at most 8 files): summary.md, summary.json,
# env.txt, speed.txt, logs.tar.gz (logs, the CUDA tests' output, reports, text-only notebooks that did not fit, 11_4's
# checkpoints), nb1-3.tar.gz (the executed notebooks).
set -u
T0=$(date +%s)
BUDGET=${BUDGET:-520} JOBS=${JOBS:-16} SPEED=${SPEED:-1} ONLY=${ONLY:-} SMOKE=${SMOKE:-0} TESTS=${TESTS:-0}
DEADLINE=$((T0 + BUDGET))
left() { echo $((DEADLINE - $(date +%s))); }
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl \
    >/tmp/pip.txt 2>&1 || { echo "wheel install failed"; tail -20 /tmp/pip.txt; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH CVKIT_DATA=$PWD/.gpu/data MPLBACKEND=Agg
W=/tmp/work
mkdir -p $W/runs $W/logs $W/meta $W/outputs/checkpoints
cp /tmp/pip.txt $W/meta/
export CVKIT_OUTPUT=$W/outputs
[ -d .gpu/ckpt ] && cp -r .gpu/ckpt/* $W/outputs/checkpoints/
{
    date -u; nvidia-smi; nproc; free -g
    python3 -c "import sys, torch, torchvision, torchmetrics, numpy; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version()); print('torchvision', torchvision.__version__, 'torchmetrics', torchmetrics.__version__, 'numpy', numpy.__version__); print(torch.cuda.get_device_name(0))"
} >$OUT/env.txt 2>&1
echo "[$(left) s left] gate"
python3 ci/gpu_check/gate.py $W/gate >$W/meta/gate.txt 2>&1
rc=$?
tail -15 $W/meta/gate.txt
[ $rc -eq 0 ] || { echo "GATE FAILED (rc $rc)"; exit 2; }
if [ "$TESTS" = 1 ]; then
    echo "[$(left) s left] CUDA-only tests"
    # the tests that skip without CUDA; -p no:cacheprovider: nothing written into the checkout
    timeout 240 python3 -m pytest -q -p no:cacheprovider -rs tests/test_train.py tests/test_train_speed.py \
        tests/test_detection_pipeline.py -k "cuda or syncs" >$W/meta/tests.txt 2>&1
    echo "=== rc $? ===" >>$W/meta/tests.txt
    tail -15 $W/meta/tests.txt
fi
if [ "$SPEED" = 1 ]; then
    echo "[$(left) s left] train_speed"
    S=$OUT/speed.txt
    speed() { echo "=== ${*:2} ===" >>$S; timeout "$1" python3 benchmarks/train_speed.py "${@:2}" >>$S 2>&1; echo "=== rc $? ===" >>$S; }
    speed 150 --profile full --cpu-threads 2 --only cvkit
    speed 45 --profile full --cpu-threads 2 --only cvkit --compile off --epochs 3
    speed 60 --profile full --cpu-threads 2 --only textbook --epochs 2
    grep -v "^\s*$" $S | tail -40
fi
echo "[$(left) s left] notebooks"
MODE=""
[ "$SMOKE" = 1 ] && MODE="--smoke"
python3 ci/gpu_check/pool.py --deadline $((DEADLINE - 30)) --jobs "$JOBS" --work $W --only "$ONLY" $MODE \
    >$W/meta/pool.txt 2>&1
cat $W/meta/pool.txt
pkill -9 -f ipykernel_launcher 2>/dev/null
python3 ci/gpu_check/summary.py $W $OUT >/dev/null 2>$W/meta/summary_err.txt
cut -c1-400 $OUT/summary.md | head -60
echo "[$(left) s left] done"
