#!/usr/bin/env bash
# Cold start of the `workflow` command as whole processes (hyperfine, Debian's package), side by
# side with `python -c pass` in the same run, so the ratios hold on any machine. Goals (issue 18):
# `workflow run` of a one-task workflow with the default alert rules < 0.20 s (about 16x
# `python -c pass`), the run recorded and the rules evaluated; `workflow validate` of a small
# file < 0.10 s (and of 1,000 tasks, the most it checks without pydantic, for scale);
# `workflow --help` < 0.06 s. Also: one python, one http and one loop task (no goal: their
# starts, kept in sight), history over 1,000,000 task-run rows < 0.5 s, `workflow monitor`
# over 100,000 executions / 1,000,000 task runs < 1 s (the store is built first; the runs
# below are recorded in it too).
#
#   bash bench/bench_cli.sh [RUNS]      (needs: apt-get install hyperfine; PYTHON=... to choose
#                                        the interpreter, default .venv/bin/python, else python3)
#
# The commands run this checkout's code (`python -m jupyter_workflows`, PYTHONPATH set to it).
# Bytecode caching is left on, as users have it (an installed wheel ships compiled modules);
# a session with PYTHONDONTWRITEBYTECODE=1 would recompile every module on every start.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
[ -x "$py" ] || py=$(command -v python3)
runs=${1:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset PYTHONDONTWRITEBYTECODE
export PYTHONPATH="$here"
"$py" -m compileall -q "$here/jupyter_workflows"
cd "$work"
echo '{"name": "one", "tasks": [{"id": "a", "type": "shell", "command": "true"}]}' > one.json
# 1,000 tasks: the most that `validate` checks without importing pydantic (acceptance.py)
"$py" -c 'import json; print(json.dumps({"name": "many", "tasks": [{"id": f"t{i}", "type": "shell",
  "command": "true", "depends_on": [f"t{i - 1}"] if i else []} for i in range(1000)]}))' > many.json
# one task of each kind whose run imports no pydantic either (definition/plain.py); the http
# task asks a server of its own on 127.0.0.1 (bench/ok_server.py)
"$py" "$here/bench/ok_server.py" "$work/port" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
until [ -s "$work/port" ]; do sleep 0.05; done
echo '{"name": "py", "tasks": [{"id": "a", "type": "python", "code": "pass"}]}' > py.json
echo "{\"name\": \"web\", \"tasks\": [{\"id\": \"a\", \"type\": \"http\",
  \"url\": \"http://127.0.0.1:$(cat "$work/port")/\", \"expected_status\": 204}]}" > web.json
echo '{"name": "loop", "tasks": [{"id": "a", "type": "loop", "items": [1, 2],
  "then": {"command": "true"}}]}' > loop.json
"$py" "$here/bench/bench_store.py" --dir "$work/workflows/.executions" \
  --executions 100000 --tasks 10 >/dev/null
wf="$py -m jupyter_workflows"
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/times.json" \
  "$py -c pass" \
  "$wf --help" \
  "$wf validate one.json" \
  "$wf validate many.json" \
  "$wf run one.json" \
  "$wf run one.json --no-alerts" \
  "$wf run py.json" \
  "$wf run web.json" \
  "$wf run loop.json" \
  "$wf history --limit 20" \
  "$wf monitor" >/dev/null
"$py" - "$work/times.json" <<'EOF'
import json, sys

results = json.load(open(sys.argv[1]))["results"]
floor = results[0]["median"]
print(f"{'command':<48} {'median':>9} {'x python -c pass':>17}")
for r in results:
    name = r["command"].split(" -m jupyter_workflows ")[-1] if "jupyter_workflows" in r["command"] else "python -c pass"
    print(f"{name:<48} {r['median'] * 1000:7.1f} ms {r['median'] / floor:16.1f}x")
EOF
