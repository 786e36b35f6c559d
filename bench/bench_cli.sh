#!/usr/bin/env bash
# Cold start of the `workflow` command as whole processes (hyperfine, Debian's package), against
# `python -c pass` as the floor. Targets (core issue): validate < 150 ms, run of a one-task
# workflow < 300 ms (recording included; alert rules evaluated unless --no-alerts), history over 1,000,000 task-run rows < 0.5 s;
# monitoring issue: `workflow monitor` over 100,000 executions / 1,000,000 task runs < 1 s.
#
#   bash bench/bench_cli.sh        (needs: apt-get install hyperfine; the project's .venv)
#
# Bytecode caching is left on, as users have it (an installed wheel ships compiled modules);
# a session with PYTHONDONTWRITEBYTECODE=1 would recompile every module on every start.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
py="$here/.venv/bin/python"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset PYTHONDONTWRITEBYTECODE
"$py" -m compileall -q "$here/jupyter_workflows"
cd "$work"
echo '{"name": "one", "tasks": [{"id": "a", "type": "shell", "command": "true"}]}' > one.json
"$py" "$here/bench/bench_store.py" --dir "$work/workflows/.executions" \
  --executions 100000 --tasks 10 >/dev/null
hyperfine -N --warmup 3 --runs 20 \
  "$py -c pass" \
  "$here/.venv/bin/workflow validate one.json" \
  "$here/.venv/bin/workflow run one.json" \
  "$here/.venv/bin/workflow run one.json --no-alerts" \
  "$here/.venv/bin/workflow history --limit 20" \
  "$here/.venv/bin/workflow monitor"
