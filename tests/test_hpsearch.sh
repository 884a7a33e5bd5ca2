#!/usr/bin/env bash
# Hyperparameter search (issue 17): `sweep:` with method, parameters, trials and
# successive halving, through the specnet binary (specs/hpsearch_blobs.yaml):
#   - sweep.jsonl has one line per trial; the drawn values lie in their
#     distributions (log_uniform, int, choice); the same seed draws the same trials,
#     another seed other ones
#   - halving: every trial trains the first rung; the ones that go on are the best
#     1/eta by the rung's figure, read here from each trial's own metrics.jsonl; only
#     they reach train.epochs; the others are "stopped" with the rung's epochs
#   - best.resolved.yaml is the resolved spec of the best finished trial; sweep.csv
#     and the printed table are sorted; compare.html holds every trial
#   - a grid of parameters runs every combination
#   - under mpirun -np 2 (when built with MPI) the ranks share the trials and reach
#     the same sweep.jsonl as one process
#   - bad input (trials: 0, low > high, a halving metric the spec does not compute)
#     exits 1 with the line and column
# Needs /usr/bin/python3 (exit 77, skipped, without).
set -uo pipefail
specnet=$1
py=/usr/bin/python3
[ -x "$py" ] || { echo "SKIP: no /usr/bin/python3"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }
spec=specs/hpsearch_blobs.yaml

"$specnet" train "$spec" --out "$tmp/a" --jobs 2 --threads 1 >"$tmp/a.txt" 2>&1
check "the search exits 0" test $? -eq 0
check "halving: the search, as sweep.jsonl and the trials' folders say" "$py" - "$tmp/a" "$spec" <<'EOF'
import json, math, re, sys
d, spec = sys.argv[1], open(sys.argv[2]).read()
trials = [json.loads(l) for l in open(d + "/sweep.jsonl")]
n = int(re.search(r"trials: (\d+)", spec).group(1))
eta = int(re.search(r"eta: (\d+)", spec).group(1))
first = int(re.search(r"min_epochs: (\d+)", spec).group(1))
epochs = int(re.search(r"epochs: (\d+)", spec).group(1))
assert [t["trial"] for t in trials] == list(range(1, n + 1)), "one line per trial, in order"
for t in trials:
    s = t["settings"]
    lr, units, bs = s["train.optimizer.adam.learning_rate"], s["model.layers.0.dense.units"], s["train.batch_size"]
    assert 1e-4 <= lr <= 3e-2, lr
    assert isinstance(units, int) and 4 <= units <= 64, units
    assert bs in (16, 32, 64), bs
# rung 1: every trial trained `first` epochs; its figure there, from its own file
rows = {t["trial"]: [json.loads(l) for l in open(f"{d}/sweep-{t['trial']}/metrics.jsonl")] for t in trials}
at_first = {k: r[first - 1]["val_accuracy"] for k, r in rows.items()}
ranked = sorted(at_first, key=lambda k: (-at_first[k], k))
went_on = set(ranked[:max(1, n // eta)])
for t in trials:
    k = t["trial"]
    if k in went_on:
        assert t["status"] != "stopped" or t["rung"] >= 2, (k, t)
    else:
        assert t["status"] == "stopped" and t["rung"] == 1 and t["epochs"] == first, (k, t)
        assert len(rows[k]) == first, (k, len(rows[k]))
done = [t for t in trials if t["status"] == "ok"]
assert done and all(t["epochs"] == epochs and len(rows[t["trial"]]) == epochs for t in done), done
for t in trials:  # the recorded figure is the trial's last line
    assert t["value"] == rows[t["trial"]][-1]["val_accuracy"], t
best = max(done, key=lambda t: (t["value"], -t["trial"]))
trial = open(f"{d}/sweep-{best['trial']}/spec.resolved.yaml").read()
assert "\nsweep:\n" in trial  # the trial's record keeps the sweep; best.resolved.yaml drops it
assert open(d + "/best.resolved.yaml").read() == trial[:trial.index("\nsweep:\n") + 1]
print(f"{n} trials; {sorted(went_on)} went on after rung 1; {len(done)} finished {epochs} epochs; "
      f"best trial {best['trial']} ({best['value']})")
EOF
# best.resolved.yaml trains the best trial again: one run, not the sweep
"$specnet" train "$tmp/a/best.resolved.yaml" --out "$tmp/best" --set train.epochs=1 --quiet >/dev/null 2>&1
check "specnet train best.resolved.yaml trains one run, not the sweep again" \
  bash -c 'test -s "$1/metrics.jsonl" && ! test -e "$1/sweep.jsonl"' _ "$tmp/best"
check "the table is printed best first" bash -c '
  sed -n "/^ *run /,/^wrote/p" "$1" | grep -E "^ +[0-9]+ " | head -1 | grep -vq stopped' _ "$tmp/a.txt"
check "sweep.csv has a header and a row per trial" test "$(wc -l <"$tmp/a/sweep.csv")" -eq 10
check "compare.html of all trials: final and best equal their metrics.jsonl" \
  "$py" "$(dirname "$0")/report_check.py" compare "$tmp/a/compare.html" $(for i in 1 2 3 4 5 6 7 8 9; do echo "$tmp/a/sweep-$i"; done)

"$specnet" train "$spec" --out "$tmp/b" --jobs 1 --quiet >/dev/null 2>&1
check "the same seed draws the same trials (and --jobs does not change them)" bash -c '
  diff <(sed "s/, \"metric\".*//" "$1/sweep.jsonl") <(sed "s/, \"metric\".*//" "$2/sweep.jsonl")' _ "$tmp/a" "$tmp/b"
"$specnet" train "$spec" --out "$tmp/c" --set seed=6 --set 'sweep.scheduler={halving: {min_epochs: 9}}' \
  --quiet >/dev/null 2>&1
check "another seed draws other trials" bash -c '
  ! cmp -s <(sed "s/, \"metric\".*//" "$1/sweep.jsonl") <(sed "s/, \"metric\".*//" "$2/sweep.jsonl")' _ "$tmp/a" "$tmp/c"
check "min_epochs = train.epochs: no trial stopped" bash -c '! grep -q stopped "$1/sweep.jsonl"' _ "$tmp/c"

# --- under mpirun: the ranks share the trials, with the same outcome ------------------
case ${2:-OFF} in
  ON | on | 1 | TRUE | true) have_mpi=1 ;;
  *) have_mpi= ;;
esac
if [ -n "$have_mpi" ] && command -v mpirun >/dev/null; then
  mpi=(mpirun --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none
       --mca oob_tcp_if_include lo --mca btl_tcp_if_include lo -x OPENBLAS_NUM_THREADS=1)
  [ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
  # under AddressSanitizer, Open MPI's own leaks past MPI_Finalize (as test_mpi.sh)
  [ -n "${ASAN_OPTIONS:-}" ] && mpi+=(-x "ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0")
  timeout 300 "${mpi[@]}" -np 2 "$specnet" train "$spec" --out "$tmp/m" --threads 1 >"$tmp/m.txt" 2>&1
  check "under mpirun -np 2: exit 0" test $? -eq 0
  check "under mpirun -np 2: the same trials, figures, epochs and statuses as one process" \
    bash -c 'diff <(sed "s/\"seconds\": [0-9.]*, //" "$1/sweep.jsonl") <(sed "s/\"seconds\": [0-9.]*, //" "$2/sweep.jsonl")' \
    _ "$tmp/a" "$tmp/m"
  check "under mpirun -np 2: one table (rank 0 prints it)" test "$(grep -c '^sweep hpsearch_blobs:' "$tmp/m.txt")" -eq 1
else
  echo "NOT TESTED: a sweep under mpirun (specnet built without MPI, or no mpirun)"
fi

# --- a grid of parameters ------------------------------------------------------------
sed '/^sweep:/,$d' "$spec" >"$tmp/grid.yaml"
cat >>"$tmp/grid.yaml" <<'EOF'
sweep:
  method: grid
  parameters:
    train.batch_size: [32, 64]
    model.layers.0.dense.units: {choice: [8, 16, 32]}
EOF
"$specnet" train "$tmp/grid.yaml" --out "$tmp/g" --set train.epochs=1 --quiet >/dev/null 2>&1
check "a grid of 2 x 3 parameters runs 6 trials, last key fastest" "$py" - "$tmp/g" <<'EOF'
import json, sys
t = [json.loads(l)["settings"] for l in open(sys.argv[1] + "/sweep.jsonl")]
want = [{"train.batch_size": b, "model.layers.0.dense.units": u} for b in (32, 64) for u in (8, 16, 32)]
assert t == want, t
EOF

mkdir "$tmp/search" && mv "$tmp/a" "$tmp/search/"
check "specnet test skips a sweep's folder (best.resolved.yaml is a record, not a test)" \
  bash -c '"$1" test "$2" 2>&1 | grep -q "^0 passed, 0 failed"' _ "$specnet" "$tmp/search"

# --- bad input -----------------------------------------------------------------------
bad() { # bad NAME SED MESSAGE: the spec edited by SED is refused with MESSAGE, exit 1
  sed "$2" "$spec" >"$tmp/bad.yaml"
  "$specnet" train "$tmp/bad.yaml" --out "$tmp/bad" >/dev/null 2>"$tmp/err"
  check "$1: exit 1" test $? -eq 1
  check "$1: says '$3'" grep -q "$3" "$tmp/err"
}
bad "trials: 0" 's/trials: 9/trials: 0/' "bad.yaml:30:11: error: trials must be a positive integer, got 0"
bad "low > high" 's/int: \[4, 64\]/int: [64, 4]/' \
  "bad.yaml:33:39: error: int: low (64) must be less than high (4)"
bad "a halving metric the spec does not compute" 's/eta: 3}/eta: 3, metric: val_mae}/' \
  "error: halving metric 'val_mae' needs 'mae' in train.metrics"

[ $fail -eq 0 ] && echo "hyperparameter search tests passed"
exit $fail
