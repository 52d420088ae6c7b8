#!/usr/bin/env bash
# Plaza's PDS against Bluesky's reference PDS, side by side, in one sitting.
#
# Runs ../shared/bench/refpds/bench.py (standard XRPC only) ROUNDS times against each
# target in turn — reference, Plaza on SQLite, Plaza on PostgreSQL — on a fresh server
# every time, then prints the medians of each target and their ratios to the
# reference's, with how busy the machine was (bench.py's `_other` CPU seconds: CPU
# burnt by anything but the servers and the load generator).
#
# Usage: scripts/bench_pds.sh [OUTDIR]        (default: a new folder under /tmp)
# Env:   ROUNDS=3
#        TARGETS="ref sqlite pg"          any subset, in the order to alternate
#        REFPDS_DIR=../.refpds            where ../shared/bench/refpds/run.sh installs it
#        BENCH=../shared/bench/refpds     the harness folder
#        PY=.venv/bin/python              a Python with httpx and libipld
#        PG_URL=postgresql://postgres@127.0.0.1:5432/test
#        BENCH_ARGS="--accounts 20 --writes-per-account 100 --concurrency 16 --reads 2000"
#        REF_PORT=8583 REF_PLC_PORT=8582 PLAZA_PORT=7583 PLAZA_DIR_PORT=7582
# Server CPU is the PDS process's (the reference's SQLite and Plaza's SQLite run inside
# it); for Plaza on PostgreSQL, *_with_db adds the CPU of its PostgreSQL backends.
# run.sh installs the reference into REFPDS_DIR first if it is missing (see
# ../shared/bench/README.md).
# Example:
#   scripts/bench_pds.sh /tmp/pdsbench            # 3 rounds x 3 targets, 5-10 minutes
#   ROUNDS=1 TARGETS="sqlite pg" scripts/bench_pds.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$(mktemp -d /tmp/pdsbench.XXXXXX)}"
ROUNDS="${ROUNDS:-3}"
TARGETS="${TARGETS:-ref sqlite pg}"
REFPDS_DIR="${REFPDS_DIR:-$ROOT/../.refpds}"
BENCH="${BENCH:-$ROOT/../shared/bench/refpds}"
PY="${PY:-$ROOT/.venv/bin/python}"
PLAZA="${PLAZA:-$ROOT/.venv/bin/plaza}"
PG_URL="${PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"
BENCH_ARGS="${BENCH_ARGS:---accounts 20 --writes-per-account 100 --concurrency 16 --reads 2000}"
REF_PORT="${REF_PORT:-8583}" REF_PLC_PORT="${REF_PLC_PORT:-8582}"
PLAZA_PORT="${PLAZA_PORT:-7583}" PLAZA_DIR_PORT="${PLAZA_DIR_PORT:-7582}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
echo "[bench_pds] results in $OUT"

PLAZA_PIDS=()
stop_plaza() {
  for pid in "${PLAZA_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  PLAZA_PIDS=()
}
cleanup() {
  stop_plaza
  bash "$BENCH/stop.sh" "$REFPDS_DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT

wait_http() { # url pid
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || { echo "[bench_pds] pid $2 exited" >&2; return 1; }
    curl -fsS -m 2 "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "[bench_pds] timeout waiting for $1" >&2
  return 1
}

start_plaza() { # target round -> writes $OUT/pids-<target>-<round>
  local target=$1 round=$2 data="$OUT/data-$1-$2" db_args=()
  rm -rf "$data"
  if [ "$target" = pg ]; then
    local schema="pdsbench_$$_$round"
    "$PY" -c "import psycopg,sys; psycopg.connect(sys.argv[1], autocommit=True).execute(
        'DROP SCHEMA IF EXISTS \"' + sys.argv[2] + '\" CASCADE')" "$PG_URL" "$schema"
    db_args=(--db "$PG_URL?schema=$schema&application_name=$schema")
  fi
  "$PLAZA" serve directory --port "$PLAZA_DIR_PORT" --data-dir "$data/directory" \
      >"$data.directory.log" 2>&1 &
  PLAZA_PIDS+=($!)
  local dir_pid=$!
  wait_http "http://127.0.0.1:$PLAZA_DIR_PORT/_health" "$dir_pid"
  "$PLAZA" serve pds --port "$PLAZA_PORT" --data-dir "$data/pds" \
      --directory "http://127.0.0.1:$PLAZA_DIR_PORT" "${db_args[@]}" >"$data.pds.log" 2>&1 &
  PLAZA_PIDS+=($!)
  wait_http "http://127.0.0.1:$PLAZA_PORT/xrpc/_health" "$!"
  printf 'directory %s\npds %s\n' "$dir_pid" "$!" >"$OUT/pids-$target-$round"
  if [ "$target" = pg ]; then  # the server's PostgreSQL backends count as its CPU too
    "$PY" -c "import psycopg,sys
for (pid,) in psycopg.connect(sys.argv[1]).execute(
        'SELECT pid FROM pg_stat_activity WHERE application_name = %s', (sys.argv[2],)):
    print(f'pg{pid} {pid}')" "$PG_URL" "pdsbench_$$_$round" >>"$OUT/pids-$target-$round"
  fi
}

drop_pg_schema() { # round
  "$PY" -c "import psycopg,sys; psycopg.connect(sys.argv[1], autocommit=True).execute(
      'DROP SCHEMA IF EXISTS \"' + sys.argv[2] + '\" CASCADE')" "$PG_URL" "pdsbench_$$_$1"
}

one_run() { # target round
  local target=$1 round=$2 url pidfile
  if [ "$target" = ref ]; then
    PLC_PORT=$REF_PLC_PORT PDS_PORT=$REF_PORT bash "$BENCH/run.sh" "$REFPDS_DIR" >/dev/null
    url="http://127.0.0.1:$REF_PORT" pidfile="$REFPDS_DIR/run/pids"
  else
    start_plaza "$target" "$round"
    url="http://127.0.0.1:$PLAZA_PORT" pidfile="$OUT/pids-$target-$round"
  fi
  # shellcheck disable=SC2086
  "$PY" "$BENCH/bench.py" --base-url "$url" $BENCH_ARGS --pidfile "$pidfile" \
      --out "$OUT/$target-$round.json" >/dev/null || echo "[bench_pds] $target round $round had errors"
  if [ "$target" = ref ]; then
    bash "$BENCH/stop.sh" "$REFPDS_DIR" >/dev/null
  else
    stop_plaza
    [ "$target" != pg ] || drop_pg_schema "$round"
    rm -rf "$OUT/data-$target-$round"
  fi
  "$PY" - "$OUT/$target-$round.json" "$target" "$round" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
w, r = d["writes"], d["reads"]
db = sum(v or 0 for k, v in w["cpu_s"].items() if k.startswith("pg"))
print(f"[bench_pds] {sys.argv[2]:6} round {sys.argv[3]}: {w['per_s']} writes/s p50 {w['p50_ms']} "
      f"p99 {w['p99_ms']} ms, CPU/write {1000 * w['cpu_s']['pds'] / max(1, w['ok']):.2f} ms "
      f"(+{1000 * db / max(1, w['ok']):.2f} in PostgreSQL), {r['per_s']} reads/s, "
      f"other load {w['cpu_s'].get('_other')} s")
EOF
}

for round in $(seq 1 "$ROUNDS"); do
  for target in $TARGETS; do one_run "$target" "$round"; done
done

"$PY" - "$OUT" "$ROUNDS" $TARGETS <<'EOF'
"""Medians per target and ratios to the reference."""
import json, statistics, sys
from pathlib import Path

out, rounds, targets = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
runs = {t: [json.loads((out / f"{t}-{i}.json").read_text()) for i in range(1, rounds + 1)]
        for t in targets}

def per_op(run, phase, with_db=False):
    cpu = run[phase]["cpu_s"]
    total = cpu["pds"] + (sum(v or 0 for k, v in cpu.items() if k.startswith("pg")) if with_db else 0)
    return 1000 * total / max(1, run[phase]["ok"])

MEASURES = {  # name: (function of one run, higher is better)
    "writes_per_s": (lambda r: r["writes"]["per_s"], True),
    "write_p50_ms": (lambda r: r["writes"]["p50_ms"], False),
    "write_p99_ms": (lambda r: r["writes"]["p99_ms"], False),
    "reads_per_s": (lambda r: r["reads"]["per_s"], True),
    "read_p99_ms": (lambda r: r["reads"]["p99_ms"], False),
    "getrepo_MB_per_s": (lambda r: r["getrepo"]["MB_per_s"], True),
    "accounts_per_s": (lambda r: r["accounts"]["per_s"], True),
    "cpu_ms_per_write": (lambda r: per_op(r, "writes"), False),
    "cpu_ms_per_read": (lambda r: per_op(r, "reads"), False),
    "cpu_ms_per_write_with_db": (lambda r: per_op(r, "writes", True), False),
    "cpu_ms_per_read_with_db": (lambda r: per_op(r, "reads", True), False),
    "peak_rss_MiB": (lambda r: r["server_procs"]["pds"]["VmHWM"] / 1024, False),
    "other_cpu_s_writes": (lambda r: r["writes"]["cpu_s"].get("_other"), False),
    "other_cpu_s_reads": (lambda r: r["reads"]["cpu_s"].get("_other"), False),
    "errors": (lambda r: sum(r[s]["errors"] for s in ("accounts", "writes", "reads", "getrepo")), False),
}
summary = {}
for t in targets:
    summary[t] = {}
    for name, (fn, _) in MEASURES.items():
        vals = [fn(r) for r in runs[t]]
        summary[t][name] = {"runs": vals, "median": statistics.median(vals)}
if "ref" in targets:
    for t in targets:
        if t == "ref":
            continue
        for name, (_, higher) in MEASURES.items():
            ref, ours = summary["ref"][name]["median"], summary[t][name]["median"]
            if name.startswith(("other", "errors")) or not ref or not ours:
                continue
            summary[t][name]["ratio_to_ref"] = round(ours / ref, 3)
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
EOF
