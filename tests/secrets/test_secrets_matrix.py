"""The matrix: one secret used every way a workflow uses one, printed every way a task prints
one, through the real ``workflow`` command with real receivers (HTTP, SMTP, PostgreSQL, a
Jupyter kernel). Afterwards no file of the store, no log, no artifact, no alert body and no
executed notebook holds it in any form, while every task got the real value."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import nbformat
from werkzeug import Request, Response

from jupyter_workflows.store import ExecutionStore
from tests.conftest import cli, write_workflow
from tests.monitor.test_channels import Inbox, start_smtp
from tests.postgres import (
    TEST_PASSWORD,
    TEST_USER,
    PostgresServer,
    fresh_database,
    postgres_fixture,  # noqa: F401 - the session fixture "postgres"
)

# Characters that every encoding changes: a quote and a backslash (JSON), '/', '+', '%', '&',
# '=' and a space (URLs, base64 padding).
SECRET = 'tk-9f"Qz/+w%=&x y\\z42'
DB_PASS = quote(TEST_PASSWORD, safe="")  # as it must be written in a postgresql:// URL

SHOW = """\
import base64, hashlib, json, os, sys, time
from urllib.parse import quote
token = os.environ["TOKEN"]
with open(sys.argv[1], "w") as out:
    out.write(hashlib.sha256(token.encode()).hexdigest())
print("plain:", token)
print("base64:", base64.b64encode(token.encode()).decode())
print("url:", quote(token, safe=""))
print("json:", json.dumps({"t": token}))
sys.stdout.write("split: " + token[:6])
sys.stdout.flush()
time.sleep(0.3)
print(token[6:], flush=True)
"""

NOTEBOOK_CELLS = [
    "import base64, hashlib, json, sys, time\nfrom urllib.parse import quote",
    "open('got-nb.txt', 'w').write(hashlib.sha256(token.encode()).hexdigest())",
    "print('plain:', token)\nprint('base64:', base64.b64encode(token.encode()).decode())\n"
    "print('url:', quote(token, safe=''))\nprint('json:', json.dumps({'t': token}))",
    "print('split: ' + token[:6], end='')\nsys.stdout.flush()\ntime.sleep(0.3)\nprint(token[6:])",
    "from jupyter_workflows import record\nrecord('echo', token)\ntoken",
]


def forms(value: str) -> dict[str, str]:
    raw = value.encode()
    return {
        "plain": value,
        "json": json.dumps(value)[1:-1],
        "url": quote(value, safe=""),
        "url+": quote_plus(value),
        "base64": base64.b64encode(raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


def leaks(text: str | bytes, *values: str) -> list[str]:
    blob = text if isinstance(text, bytes) else text.encode()
    return [
        f"{kind} of {value[:3]}..."
        for value in values
        for kind, form in forms(value).items()
        if form.encode() in blob
    ]


def write_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python", "language": "python"}
    parameters = nbformat.v4.new_code_cell("token = ''")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, *(nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS)]
    nbformat.write(nb, str(path))


def matrix_workflow(http_port: int, db_url: str) -> dict[str, Any]:
    token_env = {"TOKEN": "${secret.API_TOKEN}"}
    return {
        "name": "matrix",
        "tasks": [
            {"id": "shell_env", "type": "shell", "environment": token_env,
             "command": "python show.py got-shell.txt"},
            {"id": "http_header", "type": "http",
             "url": f"http://127.0.0.1:{http_port}/echo?key=${{secret.API_TOKEN}}",
             "headers": {"Authorization": "Bearer ${secret.API_TOKEN}"}},
            {"id": "database_url", "type": "database",
             "config": {"connection": db_url,
                        "query": "SELECT current_user AS who, '${secret.DB_PASS}' AS echoed"}},
            {"id": "notebook_param", "type": "notebook", "notebook": "show.ipynb",
             "parameters": {"token": "${secret.API_TOKEN}"}},
            {"id": "error_message", "type": "shell", "environment": token_env,
             "command": "python -c \"import os, sys; sys.exit('cannot log in as ' + "
                        "os.environ['TOKEN'])\"",
             "depends_on": ["shell_env", "http_header", "database_url", "notebook_param"]},
        ],
    }  # fmt: skip


def test_a_secret_reaches_every_task_and_no_record(
    project: Path, httpserver: Any, postgres: PostgresServer
) -> None:
    seen: list[str] = []

    def echo(request: Request) -> Response:
        seen.append(request.headers.get("Authorization", ""))
        body = {"you_sent": request.headers.get("Authorization"), "query": request.args}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/echo").respond_with_handler(echo)
    hooks: list[bytes] = []

    def hook(request: Request) -> Response:
        hooks.append(request.get_data())
        return Response("", status=204)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(hook)
    inbox = Inbox()
    smtp = start_smtp(inbox)

    database = "jw_secrets_matrix"
    fresh_database(postgres, database)
    db_url = f"postgresql://{TEST_USER}:${{secret.DB_PASS}}@127.0.0.1:{postgres.port}/{database}"
    (project / "workflows").mkdir()
    secrets_file = project / "workflows" / "secrets.env"
    secrets_file.write_text(f"DB_PASS={DB_PASS}\n")
    secrets_file.chmod(0o600)
    (project / "workflows" / "config.json").write_text(
        json.dumps({"alerts": {"channels": ["console", "webhook", "email"]}})
    )
    (project / "show.py").write_text(SHOW)
    write_notebook(project / "show.ipynb")
    write_workflow(project, matrix_workflow(httpserver.port, db_url))
    env = {
        "WORKFLOW_SECRET_API_TOKEN": SECRET,
        "ALERT_WEBHOOK_URL": httpserver.url_for("/hook"),
        "EMAIL_SMTP_HOST": "127.0.0.1",
        "EMAIL_SMTP_PORT": str(smtp.port),
        "EMAIL_FROM": "workflows@example.org",
        "EMAIL_TO": "ops@example.org",
        "SLACK_WEBHOOK_URL": "",
        "SENDGRID_API_KEY": "",
    }
    try:
        run = cli(project, "run", "wf.json", "--json", env=env, timeout=180)
    finally:
        smtp.stop()
    assert run.returncode == 1, run.stderr  # error_message fails, on purpose
    execution = json.loads(run.stdout)
    tasks = {task["id"]: task for task in execution["tasks"]}

    # Every task got the real value.
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    assert (project / "got-shell.txt").read_text() == digest
    assert (project / "got-nb.txt").read_text() == digest
    assert seen == [f"Bearer {SECRET}"]
    assert tasks["database_url"]["status"] == "succeeded", tasks["database_url"]["error"]
    assert tasks["notebook_param"]["status"] == "succeeded", tasks["notebook_param"]["error"]
    assert tasks["error_message"]["error"] == "exited with code 1: cannot log in as ***"

    # What the record shows instead.
    status = cli(project, "status", execution["id"], "--json", "--logs", "100", env=env)
    assert status.returncode == 0, status.stderr
    store = ExecutionStore(project / "workflows" / ".executions")
    _, rows = store.query("SELECT task_id, line FROM logs ORDER BY seq")
    for task_id in ("shell_env", "notebook_param"):
        lines = [line for task, line in rows if task == task_id]
        for shown in ("plain: ***", "base64: ***", "url: ***", 'json: {"t": "***"}', "split: ***"):
            assert shown in lines, (task_id, shown, lines)
    index = {
        table: store.query(f"SELECT * FROM {table}")[1]  # DuckDB may compress what it stores
        for table in ("executions", "task_runs", "attempts", "logs")
    }
    assert tasks["http_header"]["result"] == {"you_sent": "***", "query": {"key": "***"}}
    assert tasks["database_url"]["result"] == [{"who": TEST_USER, "echoed": "***"}]
    assert tasks["notebook_param"]["outputs"] == {"echo": "***"}

    # Zero occurrences, in any form, anywhere.
    assert hooks and inbox.messages, "the alert reached both receivers"
    assert "cannot log in as ***" in hooks[0].decode()
    found = {
        "run stdout": leaks(run.stdout, SECRET, DB_PASS),
        "run stderr (live output, console alert)": leaks(run.stderr, SECRET, DB_PASS),
        "status --json": leaks(status.stdout, SECRET, DB_PASS),
        "index tables": leaks(json.dumps(index, default=str, ensure_ascii=False), SECRET, DB_PASS),
        "webhook bodies": leaks(b"".join(hooks), SECRET, DB_PASS),
        "emails": leaks(b"".join(e.content for e in inbox.envelopes), SECRET, DB_PASS),
    }
    for path in sorted(project.rglob("*")):
        if path.is_file() and path != secrets_file:
            found[str(path.relative_to(project))] = leaks(path.read_bytes(), SECRET, DB_PASS)
    assert {where: what for where, what in found.items() if what} == {}
    stored = project / "workflows" / ".executions"
    assert list(stored.glob("journals/**/*.jsonl")) and (stored / "index.duckdb").exists()
    executed = next(stored.glob("**/notebook_param/show.ipynb"))
    injected = next(c for c in nbformat.read(executed, 4).cells if "injected-parameters" in
                    c.metadata.get("tags", []))  # fmt: skip
    assert injected.source == '# Parameters\ntoken = "***"\n'
