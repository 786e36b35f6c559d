"""The workflow templates, as builders: a name in, the definition's data out (JSON-ready).

Each one uses the task types for what they are good at and passes ``workflow validate``; every
value a user is expected to set arrives through ``defaults.environment`` (overridable with
``workflow run --env K=V``), so a template runs as written and fails clearly where the project
lacks what it expects (no ``package.json``, no Dockerfile).
"""

from __future__ import annotations

from typing import Any

Data = dict[str, Any]


def custom(name: str) -> Data:
    """A small manual workflow that runs anywhere: a shell step, a Python step, a report."""
    return {
        "name": name,
        "version": "1.0.0",
        "description": "A starting point: replace these tasks with your own.",
        "trigger": {"type": "manual"},
        "defaults": {"environment": {"GREETING": "Hello"}, "timeout": "5m"},
        "tasks": [
            {
                "id": "prepare",
                "name": "Prepare",
                "type": "shell",
                "command": "mkdir -p build && echo ${env.GREETING} from ${env.WORKFLOW_NAME}",
                "environment": {"WORKFLOW_NAME": name},
            },
            {
                "id": "main",
                "name": "Main step",
                "type": "python",
                "code": "import platform\nprint(f'working on Python {platform.python_version()}')",
                "depends_on": ["prepare"],
            },
            {
                "id": "report",
                "name": "Report",
                "type": "shell",
                "command": "echo main step: ${tasks.main.status}, said: ${tasks.main.result}",
                "depends_on": ["main"],
            },
        ],
    }


def web_app(name: str) -> Data:
    """Install, check, test and build a Node web app; deploy and smoke-test when asked to."""
    return {
        "name": name,
        "version": "1.0.0",
        "description": (
            "Web app pipeline: npm install, lint and tests side by side, a production build; "
            "deploys when DEPLOY=true and smoke-tests APP_URL when it is set."
        ),
        "trigger": {"type": "manual"},
        "defaults": {"environment": {"DEPLOY": "false", "APP_URL": ""}, "timeout": "10m"},
        "tasks": [
            {"id": "install", "name": "Install dependencies", "type": "shell",
             "command": "npm ci", "retry": {"attempts": 2, "delay": "5s"}},
            {"id": "lint", "name": "Lint", "type": "shell",
             "command": "npm run lint --if-present", "depends_on": ["install"]},
            {"id": "test", "name": "Unit tests", "type": "shell", "command": "npm test",
             "environment": {"CI": "true"}, "depends_on": ["install"]},
            {"id": "build", "name": "Production build", "type": "shell",
             "command": "npm run build", "environment": {"NODE_ENV": "production"},
             "depends_on": ["lint", "test"]},
            {"id": "deploy", "name": "Deploy", "type": "conditional",
             "condition": "${env.DEPLOY} == 'true'",
             "then": {"type": "shell", "command": "npm run deploy"},
             "else": {"type": "shell", "command": "echo 'deploy skipped: set DEPLOY=true'"},
             "depends_on": ["build"]},
            {"id": "smoke-test", "name": "Smoke test", "type": "http", "url": "${env.APP_URL}",
             "expected_status": 200, "timeout": "30s", "condition": "${env.APP_URL} != ''",
             "retry": {"attempts": 5, "delay": "3s"}, "depends_on": ["deploy"]},
        ],
    }  # fmt: skip


def ci_cd(name: str) -> Data:
    """Test, build an image and deploy on a push webhook (``workflow serve``), or by hand."""
    return {
        "name": name,
        "version": "1.0.0",
        "description": (
            f"CI/CD: lint and tests in parallel, a Docker image tagged with the commit, deploy "
            f"when DEPLOY_ENABLED=true. `workflow serve` takes pushes at /webhook/{name} (signed "
            "with the secret in $WEBHOOK_SECRET); `workflow run` starts it by hand."
        ),
        "trigger": {
            "type": "webhook",
            "config": {"webhook": f"/webhook/{name}", "secret_env": "WEBHOOK_SECRET"},
        },
        "defaults": {
            "environment": {"IMAGE": name, "DEPLOY_ENABLED": "false"},
            "timeout": "15m",
        },
        "notifications": {"on_failure": True, "on_completion": False},
        "tasks": [
            {"id": "revision", "name": "Commit to build", "type": "shell",
             "command": "git rev-parse --short HEAD"},
            {"id": "lint", "name": "Lint", "type": "shell", "command": "python -m ruff check ."},
            {"id": "tests", "name": "Tests", "type": "parallel", "wait_for": "all",
             "tasks": [
                 {"id": "unit-tests", "type": "shell", "command": "python -m pytest -q tests/unit"},
                 {"id": "integration-tests", "type": "shell",
                  "command": "python -m pytest -q tests/integration"},
             ]},
            {"id": "image", "name": "Build the image", "type": "docker",
             "dockerfile": "Dockerfile", "context": ".",
             "tags": ["${env.IMAGE}:${tasks.revision.result}", "${env.IMAGE}:latest"],
             "depends_on": ["revision", "lint", "tests"]},
            {"id": "deploy", "name": "Deploy", "type": "conditional",
             "condition": "${env.DEPLOY_ENABLED} == 'true'",
             "then": {"type": "shell",
                      "command": "./deploy.sh ${env.IMAGE}:${tasks.revision.result}"},
             "else": {"type": "shell", "command": "echo 'deploy skipped: set DEPLOY_ENABLED=true'"},
             "depends_on": ["image"]},
        ],
    }  # fmt: skip


def scheduled(name: str) -> Data:
    """Nightly maintenance on a cron trigger: a health check, old logs and old history removed."""
    return {
        "name": name,
        "version": "1.0.0",
        "description": (
            "Nightly maintenance at 02:00 (`workflow schedule`, `workflow serve`, or "
            "`workflow cron install`): checks HEALTH_URL when set, removes logs older than "
            "KEEP_DAYS and execution history older than KEEP_DAYS."
        ),
        "trigger": {
            "type": "cron",
            "config": {"schedule": "0 2 * * *", "overlap": "skip", "catchup": "latest"},
        },
        "defaults": {"environment": {"HEALTH_URL": "", "LOG_DIR": "logs", "KEEP_DAYS": "14"}},
        "tasks": [
            {"id": "health", "name": "Health check", "type": "http", "url": "${env.HEALTH_URL}",
             "condition": "${env.HEALTH_URL} != ''", "timeout": "30s",
             "retry": {"attempts": 3, "delay": "10s"}},
            {"id": "clean-logs", "name": "Remove old logs", "type": "shell",
             "command": (
                 'if [ -d "$LOG_DIR" ]; then find "$LOG_DIR" -type f -name "*.log" '
                 '-mtime +"$KEEP_DAYS" -print -delete; fi'
             ),
             "timeout": "5m"},
            {"id": "prune-history", "name": "Remove old execution history", "type": "shell",
             "command": "workflow cleanup --days ${env.KEEP_DAYS}", "timeout": "5m"},
            {"id": "report", "name": "Report", "type": "shell",
             "command": (
                 "echo health: ${tasks.health.status}, logs: ${tasks.clean-logs.status}, "
                 "history: ${tasks.prune-history.result}"
             ),
             "depends_on": ["health", "clean-logs", "prune-history"]},
        ],
    }  # fmt: skip


def file_watch(name: str) -> Data:
    """Check Python sources as they change (``workflow serve`` watches them)."""
    return {
        "name": name,
        "version": "1.0.0",
        "description": (
            "Runs on every change of a Python file under src/ or of pyproject.toml while "
            "`workflow serve` runs: compiles the changed file, then runs the fast tests."
        ),
        "trigger": {
            "type": "file_change",
            "config": {
                "files": ["src/**/*.py", "pyproject.toml"],
                "ignore": ["**/*_pb2.py"],
                "debounce": "500ms",
            },
        },
        "tasks": [
            {"id": "what", "name": "What changed", "type": "shell",
             "command": 'echo "$FILE_EVENT: $CHANGED_FILE"'},
            {"id": "compile", "name": "Compile the changed file", "type": "conditional",
             "condition": "${env.FILE_EXT} == '.py' && ${env.FILE_EVENT} != 'unlink'",
             "then": {"type": "shell", "command": 'python -m py_compile "$CHANGED_FILE"'},
             "depends_on": ["what"]},
            {"id": "tests", "name": "Fast tests", "type": "shell",
             # pytest exits 5 when it finds no tests: not a failure of the change
             "command": "python -m pytest -q -x -m 'not slow' || [ $? -eq 5 ]",
             "timeout": "5m", "depends_on": ["compile"]},
        ],
    }  # fmt: skip


def webhook(name: str) -> Data:
    """React to a webhook: read a value from the JSON payload, act on it."""
    return {
        "name": name,
        "version": "1.0.0",
        "description": (
            f"Runs when `workflow serve` receives a POST at /webhook/{name} (signed with the "
            "secret in $WEBHOOK_SECRET); the body arrives as $WEBHOOK_PAYLOAD."
        ),
        "trigger": {
            "type": "webhook",
            "config": {"webhook": f"/webhook/{name}", "secret_env": "WEBHOOK_SECRET"},
        },
        "tasks": [
            {"id": "payload", "name": "Read the payload", "type": "python",
             "code": (
                 "import json, os\n"
                 "payload = json.loads(os.environ.get('WEBHOOK_PAYLOAD') or '{}')\n"
                 "print(json.dumps({'ref': payload.get('ref', ''), 'keys': sorted(payload)}))"
             )},
            {"id": "act", "name": "Act on it", "type": "shell",
             "command": "echo received ref ${tasks.payload.result.ref}",
             "depends_on": ["payload"]},
        ],
    }  # fmt: skip
