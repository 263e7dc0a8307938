#!/usr/bin/env bash
# Starts one training run as NUM_PROCESSES processes on this machine, the way a multi-host run is laid out:
# each process gets DEVICES_PER_PROCESS CPU devices and joins the others through jax.distributed on
# 127.0.0.1 (gloo collectives). For trying multi-host code paths without a cluster. Run it from the
# repository root (or with gan_jax installed).
#
#   scripts/launch_local.sh 2 2 --config=experiments/dcgan_digits.py --workdir=runs/digits_2x2
#
# Process 0 logs to the console; process i>0 to <workdir>/process_<i>.log. SIGTERM or SIGINT (Ctrl-C) is
# passed to every process: they stop after the same step with a checkpoint, and the same command resumes.
# PORT (default 12355) sets the coordinator's port. The exit status is the first non-zero one, else 0.
set -uo pipefail
if [[ $# -lt 3 ]] || ! [[ "$1" =~ ^[1-9][0-9]*$ && "$2" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 NUM_PROCESSES DEVICES_PER_PROCESS --config=... --workdir=DIR [more gan_jax.main flags]" >&2
  exit 2
fi
num_processes=$1 devices=$2
shift 2
workdir=""
for arg in "$@"; do [[ "$arg" == --workdir=* ]] && workdir="${arg#--workdir=}"; done
if [[ -z "$workdir" ]]; then echo "gan_jax: error: --workdir is required" >&2; exit 2; fi
mkdir -p "$workdir" || exit 2

pids=()
for ((i = 0; i < num_processes; i++)); do
  log=/dev/stdout
  [[ $i -gt 0 ]] && log="$workdir/process_$i.log"
  XLA_FLAGS="--xla_force_host_platform_device_count=$devices ${XLA_FLAGS:-}" JAX_PLATFORMS=cpu \
    python -m gan_jax.main "$@" --coordinator_address="127.0.0.1:${PORT:-12355}" \
    --num_processes="$num_processes" --process_id="$i" > "$log" 2>&1 &
  pids+=($!)
done
forward() { kill -s "$1" "${pids[@]}" 2>/dev/null; }
trap 'forward TERM' TERM
trap 'forward INT' INT
status=0
for pid in "${pids[@]}"; do
  while true; do
    wait "$pid"; rc=$?
    kill -0 "$pid" 2>/dev/null || break  # wait returns early when a trapped signal arrives.
  done
  [[ $status -eq 0 && $rc -ne 0 ]] && status=$rc
done
exit $status
