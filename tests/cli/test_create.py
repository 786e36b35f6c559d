"""``workflow create`` / ``workflow generate`` through the real CLI: every template is written,
then checked by ``workflow validate``; the safe ones are also run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from jupyter_workflows.cli.workflow_templates import GENERATE_TYPES, TEMPLATES
from tests.conftest import cli


def _validate(project: Path, rel: str) -> dict:
    checked = cli(project, "validate", rel)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"{rel}: valid"  # no warnings either
    text = (project / rel).read_text()
    return yaml.safe_load(text) if rel.endswith((".yaml", ".yml")) else json.loads(text)


@pytest.mark.parametrize("template", ["web-app", "ci-cd", "scheduled", "custom"])
def test_every_create_template_writes_a_valid_workflow(project, template):
    made = cli(project, "create", "--name", f"my-{template}", "--template", template)
    assert made.returncode == 0, made.stderr
    rel = f"workflows/definitions/my-{template}.json"
    assert made.stdout == rel + "\n"
    data = _validate(project, rel)
    assert data["name"] == f"my-{template}"
    assert len(data["tasks"]) >= 3


@pytest.mark.parametrize("kind", sorted(GENERATE_TYPES))
def test_every_generate_type_writes_a_valid_workflow(project, kind):
    made = cli(project, "generate", "--type", kind)
    assert made.returncode == 0, made.stderr
    data = _validate(project, f"workflows/definitions/{kind}.json")
    assert data["name"] == kind  # the type names it unless --name says otherwise


def test_generate_types_include_the_create_templates_and_one_per_trigger():
    assert set(TEMPLATES) == {"web-app", "ci-cd", "scheduled", "custom"}
    assert set(GENERATE_TYPES) == set(TEMPLATES) | {"file-watch", "webhook"}


def test_templates_use_the_trigger_their_name_promises(project):
    triggers = {}
    for kind in GENERATE_TYPES:
        assert cli(project, "generate", "--type", kind, "--name", f"t-{kind}").returncode == 0
        data = json.loads((project / f"workflows/definitions/t-{kind}.json").read_text())
        triggers[kind] = data["trigger"]
    assert triggers["scheduled"]["type"] == "cron"
    assert triggers["scheduled"]["config"]["schedule"] == "0 2 * * *"
    assert triggers["ci-cd"]["config"]["webhook"] == "/webhook/t-ci-cd"
    assert triggers["webhook"]["config"] == {"webhook": "/webhook/t-webhook",
                                             "secret_env": "WEBHOOK_SECRET"}  # fmt: skip
    assert triggers["file-watch"]["type"] == "file_change"
    assert {triggers[k]["type"] for k in ("custom", "web-app")} == {"manual"}


def test_generate_with_name_and_yaml_output(project):
    made = cli(project, "generate", "--type", "web-app", "--name", "shop", "--output",
               "flows/shop.yaml")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout == "flows/shop.yaml\n"
    assert _validate(project, "flows/shop.yaml")["name"] == "shop"


@pytest.mark.parametrize(
    ("template", "env"),
    [("custom", []), ("scheduled", []), ("webhook", ["--env", 'WEBHOOK_PAYLOAD={"ref":"v1"}'])],
)
def test_the_self_contained_templates_run_as_written(project, template, env):
    assert cli(project, "generate", "--type", template, "--name", "go").returncode == 0
    ran = cli(project, "run", "workflows/definitions/go.json", "--json", *env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    execution = json.loads(ran.stdout)
    assert execution["status"] == "succeeded"
    if template == "webhook":
        act = next(t for t in execution["tasks"] if t["id"] == "act")
        assert act["result"] == "received ref v1"


def test_an_existing_file_is_kept_without_force_and_replaced_with_it(project):
    target = project / "workflows" / "definitions" / "mine.json"
    target.parent.mkdir(parents=True)
    target.write_text("my own work\n")
    refused = cli(project, "create", "--name", "mine", "--template", "custom")
    assert refused.returncode == 2
    assert refused.stderr == (
        "error: workflows/definitions/mine.json already exists; use --force to overwrite it\n"
    )
    assert refused.stdout == ""
    assert target.read_text() == "my own work\n"
    forced = cli(project, "create", "--name", "mine", "--template", "scheduled", "--force")
    assert forced.returncode == 0, forced.stderr
    assert _validate(project, "workflows/definitions/mine.json")["trigger"]["type"] == "cron"
    assert [p.name for p in target.parent.iterdir()] == ["mine.json"]  # no temp file left


def test_generate_refuses_to_overwrite_too(project):
    assert cli(project, "generate", "--type", "custom").returncode == 0
    again = cli(project, "generate", "--type", "custom")
    assert again.returncode == 2 and "use --force" in again.stderr


def test_unknown_template_or_type_lists_the_valid_ones(project):
    bad = cli(project, "create", "--name", "x", "--template", "webapp")
    assert bad.returncode == 2
    assert bad.stderr == (
        "error: unknown template 'webapp'; choose one of: web-app, ci-cd, scheduled, custom\n"
    )
    bad_type = cli(project, "generate", "--type", "cron")
    assert bad_type.returncode == 2
    assert "unknown type 'cron'; choose one of: " in bad_type.stderr
    assert all(kind in bad_type.stderr for kind in GENERATE_TYPES)
    assert not (project / "workflows").exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", "-flag", "has space", "", ".hidden", "x."])
def test_names_that_cannot_be_file_names_are_refused(project, name):
    bad = cli(project, "create", "--name", name, "--template", "custom")
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"error: invalid workflow name '{name}'")
    assert not (project / "workflows").exists() and not (project.parent / "escape.json").exists()


def test_an_output_that_is_not_a_definition_file_is_refused(project):
    bad = cli(project, "create", "--name", "x", "--template", "custom", "--output", "x.txt")
    assert bad.returncode == 2
    assert "must end in .json, .yaml or .yml" in bad.stderr
    assert not (project / "x.txt").exists()
