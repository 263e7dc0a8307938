#!/usr/bin/env bash
# The checks to run when a GPU is lent: step benchmarks of every model (float32, and bfloat16 where the model
# computes in it), PyTorch's twins on the GPU, and a seed-vmapped 2D mode-collapse run; one JSON line per check.
#
#   bash scripts/gpu_check.sh [--smoke] [--models=a,b] [--experiments=a,b] [--sections=a,b] [--torch_device=D]
#
# stdout holds only JSON lines, one per check; logs go to stderr. Exit status 0 when no check failed, 1 when one
# did, 2 for a bad command line. It needs Python with jax, flax, optax, numpy and ml_collections, and torch for the
# twins: no TensorFlow, TFDS or clu. The pure-Python wheels (*-none-any.whl) in $GAN_JAX_WHEELS (default: the
# repository's .whl/, which git ignores) go first on PYTHONPATH: ml_collections where it is not installed,
#   pip download ml-collections==1.1.0 --no-deps -d .whl
# $PYTHON names the interpreter (default python3). Outside --smoke, compilations are cached in
# $JAX_COMPILATION_CACHE_DIR (default /tmp/gan_jax_gpu_check_xla_cache), so a rerun on the same machine compiles
# less (its compile_s then is mostly a cache read).
#
# Sections, in this order, each under a time limit and all within 450 s (a section past its limit, or failing,
# prints one line {"check": "section:<name>", "status": "failed", "error": ...} after the lines it printed):
#   environment   1 line   what the table's header needs
#   benchmarks    scripts/benchmark.py: every --models model in float32, then in bfloat16
#   matmul        scripts/benchmark.py --matmul: float32 and bfloat16, 8192x8192 (the yardstick for GFLOP/s)
#   torch         scripts/torch_twin.py: dcgan28, dcgan64, pix2pix32, cyclegan32 (those of --models) in float32
#                 and bfloat16 (the translation twins: float32 only, bfloat16 skipped as the benchmark's)
#   mode_collapse scripts/mode_collapse_vmapped.py: each --experiments experiment, 10 seeds vmapped, 10,000
#                 steps (or fewer: training stops after 30 s), mode coverage on 2,500 samples per seed
# --models (default: dcgan28,dcgan64,digits,mlp2d,pix2pix32,cyclegan32), --experiments (default:
# gan_ring,pacgan4_grid) and --sections (default: all) choose less. --torch_device: cuda (the default: the twins
# are skipped, with the reason, where torch is missing or sees no GPU), cpu, or auto (--smoke's default: cuda where
# available, else the CPU, so that the twins' path runs everywhere).
# --smoke shrinks every run for a CPU (2-3 minutes on 2 busy cores): benchmarks of batch 2 for 2 steps in one
# window after one warm-up step, compiled with XLA's backend optimisation off; 256x256 matmuls; 50 mode-collapse
# steps of 2 seeds.
#
# Every line has: check (a unique name), status ("ok", "skipped" with a reason, or "failed" with an error),
# device_kind (jax.devices()[0].device_kind; for the twins torch.cuda.get_device_name(), or "cpu"), platform, jax
# (its version) and device (platform:kind xcount, CPUs). Then, by check:
#   environment                  python, jaxlib, flax, optax, numpy, torch (null when missing), torch_cuda,
#                                device_count, ml_collections (version), wheels (those put on PYTHONPATH), smoke
#   benchmark:<model>:<dtype>    model, dtype, batch (examples per update), supports_bf16, steps, windows,
#                                compile_s, ms_per_step (median window), ms_range ([fastest, slowest]), images_per_s,
#                                gflop_per_step (XLA's cost analysis), gflop_per_s; skipped for bfloat16 where the
#                                model computes in float32 only (supports_bf16 false)
#   matmul:<dtype>:<n>           n, gflop_per_s
#   torch_twin:<model>:<dtype>   model, dtype, batch, steps, windows, ms_per_step, ms_range, images_per_s, tf32
#                                (float32 matrix products in TF32, as XLA's default precision computes them), torch
#   mode_collapse:<experiment>   data, seeds, steps (trained), steps_requested, batch, pack, samples_per_seed,
#                                compile_s, train_s, steps_per_s (all seeds together), seed_steps_per_s, eval_s,
#                                num_modes, modes_covered / high_quality_pct / reverse_kl as {mean, sem, n} over
#                                seeds, per_seed
# The README's GPU table takes, per model: ms_per_step and images_per_s of the float32 and bfloat16 lines, the
# twins' ms_per_step beside them (and their ratio), gflop_per_s against matmul's; and per experiment, modes covered,
# high-quality % and reverse KL as mean ± sem with steps_per_s.
set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
ALL_MODELS=dcgan28,dcgan64,digits,mlp2d,pix2pix32,cyclegan32
ALL_SECTIONS=environment,benchmarks,matmul,torch,mode_collapse
SMOKE=0 MODELS=$ALL_MODELS EXPERIMENTS=gan_ring,pacgan4_grid SECTIONS=$ALL_SECTIONS TORCH_DEVICE=""

usage_error() {
  echo "gan_jax: error: $1" >&2
  exit 2
}

for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    --models=*) MODELS=${arg#*=} ;;
    --experiments=*) EXPERIMENTS=${arg#*=} ;;
    --sections=*) SECTIONS=${arg#*=} ;;
    --torch_device=*) TORCH_DEVICE=${arg#*=} ;;
    *) usage_error "unknown argument '$arg'; allowed: --smoke, --models=a,b, --experiments=a,b, --sections=a,b,\
 --torch_device=cuda|cpu|auto" ;;
  esac
done
for model in ${MODELS//,/ }; do
  [[ ",$ALL_MODELS," == *",$model,"* ]] || usage_error "unknown --models entry '$model'; allowed: $ALL_MODELS"
done
for section in ${SECTIONS//,/ }; do
  [[ ",$ALL_SECTIONS," == *",$section,"* ]] || usage_error "unknown --sections entry '$section'; allowed: $ALL_SECTIONS"
done
for experiment in ${EXPERIMENTS//,/ }; do
  [[ -f "$REPO/experiments/$experiment.py" ]] ||
    usage_error "unknown --experiments entry '$experiment': no experiments/$experiment.py"
done
[[ -z "$MODELS" ]] && usage_error "--models is empty"
TORCH_DEVICE=${TORCH_DEVICE:-$([[ $SMOKE == 1 ]] && echo auto || echo cuda)}
case "$TORCH_DEVICE" in
  cuda|cpu|auto) ;;
  *) usage_error "unknown --torch_device '$TORCH_DEVICE'; allowed: cuda, cpu, auto" ;;
esac
command -v "$PY" >/dev/null || usage_error "no Python interpreter '$PY' (set \$PYTHON)"

log() { echo "gpu_check: $(date +%H:%M:%S) $*" >&2; }
wants() { [[ ",$SECTIONS," == *",$1,"* ]]; }

# Carried pure-Python wheels (ml_collections, which gan_jax.config needs; any pinned others) first on PYTHONPATH.
WHEELS=${GAN_JAX_WHEELS:-$REPO/.whl} CARRIED=""
for wheel in "$WHEELS"/*-none-any.whl; do
  if [[ -f "$wheel" ]]; then
    export PYTHONPATH="$wheel${PYTHONPATH:+:$PYTHONPATH}"
    CARRIED="${CARRIED:+$CARRIED,}$(basename "$wheel")"
  fi
done
"$PY" -c "import ml_collections" 2>/dev/null || usage_error "ml_collections is not importable and no wheel of it\
 is in $WHEELS (pip download ml-collections==1.1.0 --no-deps -d $WHEELS)"

if [[ $SMOKE == 1 ]]; then
  BENCH_ARGS=(--batch=2 --steps=2 --windows=1 --warmup=1) MATMUL_SIZE=256
  MC_ARGS=(--steps=50 --seeds=2 --steps_per_call=25)
  export XLA_FLAGS="${XLA_FLAGS:-} --xla_backend_optimization_level=0"
  LIMITS=(environment=120 benchmarks=600 matmul=120 torch=300 mode_collapse=300) TOTAL_LIMIT=1500
else
  BENCH_ARGS=(--steps=100 --windows=5 --warmup=5) MATMUL_SIZE=8192
  MC_ARGS=(--steps=10000 --seeds=10 --steps_per_call=500 --max_train_s=30)
  export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/gan_jax_gpu_check_xla_cache}
  export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=${JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS:-1}
  LIMITS=(environment=45 benchmarks=240 matmul=30 torch=90 mode_collapse=130) TOTAL_LIMIT=450
fi
limit() { local entry; for entry in "${LIMITS[@]}"; do [[ ${entry%%=*} == "$1" ]] && echo "${entry#*=}"; done; }
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
cd "$REPO" || exit 2

FAILED=0
# emit STATUS CHECK REASON: the line of a check that no program printed (skipped, or failed).
emit() {
  "$PY" - "$@" <<'EOF'
import importlib.metadata, json, os, sys
status, check, reason = sys.argv[1:4]
def version(name):
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return None
line = {"check": check, "status": status, ("reason" if status == "skipped" else "error"): reason,
        "device_kind": os.environ.get("GPU_CHECK_DEVICE_KIND"), "platform": os.environ.get("GPU_CHECK_PLATFORM"),
        "jax": version("jax"), "device": os.environ.get("GPU_CHECK_DEVICE")}
print(json.dumps(line), flush=True)
EOF
}

# section NAME COMMAND...: runs it under its time limit, its stdout lines passed on, its stderr logged.
section() {
  local name=$1 seconds rc
  shift
  wants "$name" || return 0
  seconds=$(limit "$name")
  if (( TOTAL_LIMIT - SECONDS < seconds )); then
    seconds=$((TOTAL_LIMIT - SECONDS))
  fi
  if (( seconds < 5 )); then
    FAILED=1
    emit failed "section:$name" "not run: the check's $TOTAL_LIMIT s were spent"
    return 0
  fi
  log "$name: $* (limit ${seconds} s)"
  local start=$SECONDS
  timeout --kill-after=10 "$seconds" "$@"
  rc=$?
  log "$name: exit $rc after $((SECONDS - start)) s"
  if [[ $rc -ne 0 ]]; then
    FAILED=1
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
      emit failed "section:$name" "timed out after $seconds s (lines before this one are the checks it finished)"
    else
      emit failed "section:$name" "exit status $rc (see stderr)"
    fi
  fi
}

# The device, for the lines the shell prints itself (probed without holding the GPU's memory).
PROBE=$(XLA_PYTHON_CLIENT_PREALLOCATE=false "$PY" -c "
import os, jax
d = jax.devices()[0]
print(d.device_kind.replace(chr(10), ' ')); print(d.platform)
print(f'{d.platform}:{d.device_kind} x{jax.device_count()}, {os.cpu_count()} CPUs')")
if [[ $? -ne 0 ]]; then
  emit failed environment "jax does not start with $PY (see stderr)"
  exit 1
fi
export GPU_CHECK_DEVICE_KIND=$(sed -n 1p <<<"$PROBE") GPU_CHECK_PLATFORM=$(sed -n 2p <<<"$PROBE") \
  GPU_CHECK_DEVICE=$(sed -n 3p <<<"$PROBE")
log "device: $GPU_CHECK_DEVICE; smoke=$SMOKE"

section environment env XLA_PYTHON_CLIENT_PREALLOCATE=false GPU_CHECK_WHEELS="$CARRIED" \
  GPU_CHECK_SMOKE="$SMOKE" "$PY" - <<'EOF'
import importlib.metadata, json, os, platform
import jax
def version(name):
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return None
try:
  import torch
  torch_cuda = torch.cuda.is_available()
except ImportError:
  torch_cuda = None
d = jax.devices()[0]
print(json.dumps({"check": "environment", "status": "ok", "device_kind": d.device_kind, "platform": d.platform,
                  "jax": jax.__version__, "device": os.environ["GPU_CHECK_DEVICE"], "device_count": jax.device_count(),
                  "python": platform.python_version(), "jaxlib": version("jaxlib"), "flax": version("flax"),
                  "optax": version("optax"), "numpy": version("numpy"), "torch": version("torch"),
                  "torch_cuda": torch_cuda, "ml_collections": version("ml_collections"),
                  "wheels": [w for w in os.environ["GPU_CHECK_WHEELS"].split(",") if w],
                  "smoke": os.environ["GPU_CHECK_SMOKE"] == "1"}), flush=True)
EOF

section benchmarks "$PY" scripts/benchmark.py --model="$MODELS" --dtype=float32,bfloat16 "${BENCH_ARGS[@]}"
section matmul "$PY" scripts/benchmark.py --matmul --dtype=float32,bfloat16 --matmul_size="$MATMUL_SIZE"

TWINS=$(tr , '\n' <<<"$MODELS" | grep -x -E 'dcgan28|dcgan64|pix2pix32|cyclegan32' | paste -s -d , -)
if wants torch && [[ -n "$TWINS" ]]; then
  TORCH_STATE=$("$PY" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu', torch.__version__)" \
    2>/dev/null || echo missing)
  REASON=""
  if [[ $TORCH_STATE == missing ]]; then
    REASON="torch is not installed for $PY"
  elif [[ $TORCH_DEVICE == cuda && $TORCH_STATE != cuda* ]]; then
    REASON="torch.cuda.is_available() is False (torch ${TORCH_STATE#* }): no GPU for the twins"
  fi
  if [[ -n "$REASON" ]]; then
    log "torch: skipped: $REASON"
    for dtype in float32 bfloat16; do
      for model in ${TWINS//,/ }; do emit skipped "torch_twin:$model:$dtype" "$REASON"; done
    done
  else
    DEVICE=$([[ $TORCH_DEVICE == auto ]] && echo "${TORCH_STATE%% *}" || echo "$TORCH_DEVICE")
    section torch "$PY" scripts/torch_twin.py --model="$TWINS" --dtype=float32,bfloat16 --device="$DEVICE" \
      "${BENCH_ARGS[@]}"
  fi
fi

[[ -n "$EXPERIMENTS" ]] && section mode_collapse "$PY" scripts/mode_collapse_vmapped.py \
  --experiments="$EXPERIMENTS" "${MC_ARGS[@]}"

log "done (failed: $FAILED)"
exit "$FAILED"
