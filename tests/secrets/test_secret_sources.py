"""Each source of secrets, in order: environment, secrets file, command, keyring."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from jupyter_workflows.errors import ConfigError, SecretError
from jupyter_workflows.secrets import SecretsConfig, SecretSources


def private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def config(root: Path, section: dict) -> None:
    (root / "workflows").mkdir(exist_ok=True)
    (root / "workflows" / "config.json").write_text(json.dumps({"secrets": section}))


def test_the_prefixed_variable_and_a_declared_plain_one(project):
    env = {"WORKFLOW_SECRET_API": "from-prefix", "API": "plain", "OTHER": "plain-other"}
    sources = SecretSources(project, env=env, declared=["OTHER"])
    api = sources.lookup("API")
    assert (api.value, api.source, api.where) == ("from-prefix", "env", "$WORKFLOW_SECRET_API")
    assert sources.lookup("OTHER").value == "plain-other"
    # Plain NAME counts only for a name the workflow declares secret.
    assert SecretSources(project, env={"OTHER": "x" * 8}).lookup("OTHER") is None


def test_the_secrets_file_with_comments_export_and_quotes(project):
    private(
        project / "workflows" / "secrets.env",
        '# tokens\n\nexport DB_URL=postgres://u:p@h/db\nQUOTED="a \\"b\\"\\nc"\n'
        "SINGLE='x $y \\n'\n",
    )
    sources = SecretSources(project, env={})
    found = sources.lookup("DB_URL")
    assert (found.value, found.source, found.where) == (
        "postgres://u:p@h/db", "file", "workflows/secrets.env"
    )  # fmt: skip
    assert sources.lookup("QUOTED").value == 'a "b"\nc'
    assert sources.lookup("SINGLE").value == "x $y \\n"
    assert [f.name for f in sources.listable()] == ["DB_URL", "QUOTED", "SINGLE"]


def test_the_environment_comes_before_the_file(project):
    private(project / "workflows" / "secrets.env", "API=from-file\n")
    found = SecretSources(project, env={"WORKFLOW_SECRET_API": "from-env"}).lookup("API")
    assert (found.value, found.source) == ("from-env", "env")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_secrets_file_others_can_read_is_refused(project, mode):
    path = private(project / "workflows" / "secrets.env", "API=hunter2-value\n")
    path.chmod(mode)
    with pytest.raises(SecretError) as caught:
        SecretSources(project, env={}).lookup("API")
    message = str(caught.value)
    assert str(path) in message and f"{mode:04o}" in message and "chmod 600" in message
    assert "hunter2" not in message


def test_a_malformed_line_names_its_number_not_its_text(project):
    private(project / "workflows" / "secrets.env", "A=1\nthis is hunter2\n")
    with pytest.raises(SecretError, match=r"line 2: expected NAME=value") as caught:
        SecretSources(project, env={}).lookup("A")
    assert "hunter2" not in str(caught.value)


def test_a_file_named_in_the_config(project, tmp_path):
    elsewhere = private(tmp_path / "outside" / "my.env", "API=from-config-file\n")
    config(project, {"file": str(elsewhere)})
    found = SecretSources(project, env={}).lookup("API")
    assert (found.value, found.where) == ("from-config-file", str(elsewhere))


def test_a_command_provider(project, tmp_path):
    script = tmp_path / "vault.py"
    script.write_text(
        "import sys\n"
        "name = sys.argv[1]\n"
        "if name == 'KNOWN':\n    print('value-of-' + name)\n"
        "else:\n    sys.exit(f'Error: {name} is not in the password store.')\n"
    )
    config(project, {"provider": "command", "command": f"{sys.executable} {script} {{name}}"})
    sources = SecretSources(project, env={})
    found = sources.lookup("KNOWN")
    assert (found.value, found.source) == ("value-of-KNOWN", "command")
    assert sources.lookup("UNKNOWN") is None
    looked = " ".join(sources.looked_in("UNKNOWN"))
    assert "exit 1: Error: UNKNOWN is not in the password store." in looked


@pytest.mark.parametrize(
    "section, message",
    [
        ({"provider": "vault"}, "secrets.provider"),
        ({"provider": "command"}, "give secrets.command"),
        ({"command": "pass show"}, "must contain {name}"),
        ({"keyring": "yes"}, "secrets.keyring"),
        ({"file": ""}, "secrets.file"),
    ],
)
def test_bad_config_names_the_key(project, section, message):
    config(project, section)
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        SecretsConfig.for_project(project)


@pytest.fixture
def fake_keyring(tmp_path, monkeypatch):
    """A ``keyring`` module on sys.path that knows one password."""
    folder = tmp_path / "fake-keyring"
    (folder / "keyring").mkdir(parents=True)
    (folder / "keyring" / "__init__.py").write_text(
        "asked = []\n"
        "def get_password(service, name):\n"
        "    asked.append((service, name))\n"
        "    if name == 'BROKEN':\n        raise RuntimeError('locked')\n"
        "    return 'from-keyring' if (service, name) == ('jupyter-workflows', 'KR') else None\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "keyring", raising=False)
    yield
    sys.modules.pop("keyring", None)


def test_the_keyring_when_installed(project, fake_keyring):
    sources = SecretSources(project, env={})
    found = sources.lookup("KR")
    assert (found.value, found.source, found.where) == (
        "from-keyring", "keyring", "keyring service 'jupyter-workflows'"
    )  # fmt: skip
    assert sources.lookup("NOPE") is None
    assert sources.lookup("BROKEN") is None  # an unusable keyring is a source without it
    assert "unusable: RuntimeError" in sources.looked_in("BROKEN")[-1]


def test_the_keyring_turned_off(project, fake_keyring):
    config(project, {"keyring": False})
    assert SecretSources(project, env={}).lookup("KR") is None


def test_without_the_keyring_package_the_source_is_skipped(project, monkeypatch):
    monkeypatch.setitem(sys.modules, "keyring", None)  # import keyring -> ImportError
    sources = SecretSources(project, env={})
    assert sources.lookup("KR") is None
    assert "not installed" in sources.looked_in("KR")[-1]


def test_no_value_in_reprs(project):
    found = SecretSources(project, env={"WORKFLOW_SECRET_A": "hunter2-value"}).lookup("A")
    assert "hunter2" not in repr(found)
    assert os.environ.get("WORKFLOW_SECRET_A") is None
