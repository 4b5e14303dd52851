#!/usr/bin/env bash
# The drives demo on this machine: the whole pipeline with `mizzen run`, its datasets and one
# driver's erasure, two drive-quality signals over the classifier's decisions, the published
# model served with `mizzen serve`, a few live predictions over HTTP, and where to look next.
#   bash examples/drives/demo.sh            (what `make demo` runs)
#   ROWS=20000 bash examples/drives/demo.sh (a quicker run)
# Environment: ROWS (default 300000), DEMO_ENGINE=spark|duckdb (default: spark when pyspark
# and Java are installed), MIZZEN_BIN (folder holding mizzen and python; default the repo venv).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
bin="${MIZZEN_BIN:-$here/../../.venv/bin}"
export PATH="$(cd "$bin" && pwd):$PATH"
cd "$here"

rows="${ROWS:-300000}"
bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now() { python -c 'import time; print(time.time())'; }
declare -a timings=()
timed() {  # timed LABEL COMMAND...: run it, remember how long it took
  local label="$1" start end
  shift
  start="$(now)"
  "$@"
  end="$(now)"
  timings+=("$label=$(python -c "print(f'{$end - $start:.1f}')")")
}

engine="${DEMO_ENGINE:-}"
if [ -z "$engine" ]; then
  if python -c 'import pyspark' 2>/dev/null && command -v java >/dev/null 2>&1; then engine=spark; else engine=duckdb; fi
fi
env_args=()
[ "$engine" = "spark" ] && env_args=(--env spark)

bold "1. the spec (features with $engine)"
timed validate mizzen validate

bold "2. the pipeline: generate $rows drives -> features -> train -> evaluate -> publish -> report"
timed pipeline mizzen run drives "${env_args[@]}" --set "ROWS=$rows"
run_json="$(mizzen runs drives -o json)"
run_id="$(python -c 'import json,sys; print(json.loads(sys.argv[1])[0]["id"])' "$run_json")"

bold "3. the datasets it wrote, and driver 7 asking to be forgotten (GDPR erasure)"
mizzen data list
mizzen data forget 7                      # a dry run: what --apply would remove, and where
timed forget mizzen data forget 7 --apply --now --reason "demo: erasure request"
mizzen data forget 7 | grep '^total'      # nothing left in any version

bold "4. signals: the classifier's decisions -> business-share and label-accuracy (docs/signals.md)"
# all but the last two weeks first, the rest after: the second computation reads only the new days' files
two_weeks_ago="$(python -c 'import datetime; print(datetime.date.today() - datetime.timedelta(days=14))')"
timed classify mizzen run classify --set "CLASSIFY_UNTIL=$two_weeks_ago"
timed signals mizzen signals compute business-share
mizzen signals compute label-accuracy
mizzen run classify
timed signals-2 mizzen signals compute business-share
mizzen signals compute label-accuracy
mizzen signals show business-share --last 21
mizzen signals show label-accuracy --last 21

if mizzen render --help >/dev/null 2>&1; then
  bold "5. the same spec for Kubernetes (mizzen render --env prod)"
  timed render sh -c 'mizzen render --env prod --image registry.example.com/analytics/drives:demo > .mizzen/render-prod.yaml'
  grep '^kind:' .mizzen/render-prod.yaml | sort | uniq -c | sed 's/^/   /'
fi

bold "6. serving drive-classifier (mizzen serve) and asking it about a few drives"
port="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mizzen serve drive-classifier --host 127.0.0.1 --port "$port" > .mizzen/demo-serve.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
start="$(now)"
python - "$port" <<'EOF'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/v2/health/ready"
for _ in range(240):
    try:
        if urllib.request.urlopen(url, timeout=1).status == 200:
            sys.exit(0)
    except OSError:
        time.sleep(0.25)
sys.exit("the model server did not become ready; see examples/drives/.mizzen/demo-serve.log")
EOF
timings+=("serve-ready=$(python -c "print(f'{$(now) - $start:.1f}')")")
python - "$port" <<'EOF'
import json, sys, urllib.request

# start_hour, weekday (0 = Monday), weekend, distance_km, duration_min, speed_kmh, to_office_km, van, driver_avg_km
drives = [
    ("Mon 08:10, 34 km in 31 min, ends 0.8 km from the office", [8, 0, 0, 34.0, 31, 66, 0.8, 0, 28]),
    ("Sat 15:40, 6 km in 14 min, ends 12 km from the office", [15, 5, 1, 6.0, 14, 26, 12.0, 0, 9]),
    ("Wed 13:05, 48 km in 40 min by van, 2.5 km from the office", [13, 2, 0, 48.0, 40, 72, 2.5, 1, 30]),
    ("Thu 19:30, 9 km in 17 min, 9 km from the office", [19, 3, 0, 9.0, 17, 32, 9.0, 0, 12]),
]
body = json.dumps({"instances": [d for _, d in drives]}).encode()
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/predict", body, {"content-type": "application/json"})
with urllib.request.urlopen(request, timeout=10) as response:
    answer = json.load(response)
    version = response.headers.get("x-mizzen-model-version")
print(f"   POST /predict -> drive-classifier v{version}")
for (text, _), p in zip(drives, answer["predictions"]):
    business = p["probabilities"][1]
    label = "business" if p["label"] == 1 else "personal"
    print(f"   {text:58s} -> {label:8s} (p(business) = {business:.2f})")
EOF
kill "$server"
wait "$server" 2>/dev/null || true
trap - EXIT

bold "timings (seconds)"
for t in "${timings[@]}"; do printf '   %-12s %s\n' "${t%%=*}" "${t#*=}"; done
python - "$run_json" <<'EOF'
import json, sys
run = json.loads(sys.argv[1])[0]
for step in run["steps"]:
    if step.get("started") and step.get("ended"):
        print(f"     {step['name']:10s} {step['ended'] - step['started']:.1f}")
EOF

report="$(mizzen runs show "$run_id" -o json | python -c 'import json,sys; urls = json.load(sys.stdin).get("output_urls", {}); print(next((u.removeprefix("file://") for n, u in urls.items() if n.endswith(".ipynb")), "(not stored)"))')"
bold "where to look"
cat <<EOF
   mizzen runs                      every run, its status and metrics
   mizzen runs show $run_id   this run: steps, metrics, outputs
   mizzen logs drives               the pipeline's logs
   mizzen models show drive-classifier
   mizzen signals list              the drive-quality signals, their alerts
   mizzen signals show business-share  its arms A and B with intervals
   mizzen data show drives          a dataset: schema, versions; mizzen data lineage features
   mizzen data audit                the erasure just made (the driver id is never stored)
   report notebook: $report
   mizzen up classifier             serve the model until Ctrl-C (port 8080)
   mizzen ui                        the dashboard (Signals: each signal over time)
   (all from $here)
EOF
