"""Charts render without the internet: the ``jupyter-workflows`` Altair renderer draws them
with vl-convert in the kernel, and a notebook run with no network at all shows them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import altair as alt
import nbformat
import pytest

from jupyter_workflows.monitor import charts
from jupyter_workflows.monitor.chart_render import NAME, offline_bundle, use_offline_renderer

REPO = Path(__file__).resolve().parents[2]
RUNS = [
    {"id": "a", "workflow": "etl", "status": "succeeded", "started_at": 1.7e9,
     "duration_ms": 1200.0},
    {"id": "b", "workflow": "etl", "status": "failed", "started_at": 1.7e9 + 60,
     "duration_ms": 800.0},
]  # fmt: skip


def _urls(page: str) -> list[str]:
    """Every address the page would fetch (scripts, styles, images)."""
    return re.findall(r"""(?:src|href)\s*=\s*['"]?([^'" >]+)""", page) + re.findall(
        r"""import\s*\(\s*['"]([^'"]+)""", page
    )


@pytest.fixture
def default_renderer():
    previous = alt.renderers.active
    alt.renderers.enable("default")
    yield
    alt.renderers.enable(previous)


def test_a_chart_function_picks_the_offline_renderer(default_renderer) -> None:
    pandas = pytest.importorskip("pandas")
    chart = charts.success_rate(pandas.DataFrame(RUNS))
    assert alt.renderers.active == NAME
    bundle = alt.renderers.get()(chart.to_dict())
    svg = bundle["image/svg+xml"]
    assert svg.lstrip().startswith("<svg") and "Success rate" in svg and "etl" in svg
    page = bundle["text/html"]
    assert svg in page  # drawn without any script
    assert not _urls(page) and "jsdelivr" not in page and "<script src" not in page
    assert bundle["text/plain"] == "<chart: Success rate>"


def test_a_renderer_the_user_chose_is_left_alone(default_renderer) -> None:
    alt.renderers.enable("mimetype")
    assert use_offline_renderer() is False
    assert alt.renderers.active == "mimetype"


def test_the_bundle_of_a_layered_and_concatenated_chart_is_titled(default_renderer) -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(RUNS)
    both = alt.vconcat(charts.durations(frame), charts.success_rate(frame))
    bundle = offline_bundle(both.to_dict())
    assert bundle["text/plain"] == "<chart: Run durations>"
    assert bundle["image/svg+xml"].count("Run durations") >= 1


def _offline_kernel(home: Path) -> Path:
    """A kernelspec whose kernel runs in a network namespace of its own: no interface but a
    loopback nobody else shares, so nothing outside can be reached. It talks to us over unix
    sockets (ipc), which a namespace does not cut."""
    spec = home / "kernels" / "offline"
    spec.mkdir(parents=True)
    argv = ["unshare", "-rn", sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "offline", "language": "python"})
    )
    return home / "kernels"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_a_notebook_with_no_network_shows_the_chart(project: Path, monkeypatch) -> None:
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -rn is not allowed here: {probe.stderr.decode().strip()}")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    monkeypatch.setenv("PYTHONPATH", str(REPO))
    (project / "wf.json").write_text(
        json.dumps(
            {
                "name": "two",
                "tasks": [
                    {"id": "first", "type": "shell", "command": "sleep 0.2"},
                    {"id": "second", "type": "shell", "command": "true", "depends_on": ["first"]},
                ],
            }
        )  # fmt: skip
    )
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import socket\n"
            "try:\n"
            "    socket.create_connection(('151.101.1.229', 443), timeout=3)\n"  # a CDN's address
            "    print('network: reachable')\n"
            "except OSError as exc:\n"
            "    print('network: blocked', exc)"
        ),
        nbformat.v4.new_code_cell("%load_ext jupyter_workflows"),
        nbformat.v4.new_code_cell("ran = %workflow run wf.json"),
        nbformat.v4.new_code_cell(
            "from jupyter_workflows import charts\ncharts.gantt(ran.execution)"
        ),
    ]
    specs = KernelSpecManager(kernel_dirs=[str(_offline_kernel(project / "jupyter"))])
    manager = KernelManager(
        kernel_name="offline", kernel_spec_manager=specs, transport="ipc", ip=str(project / "k")
    )
    client = NotebookClient(
        notebook, km=manager, timeout=180, resources={"metadata": {"path": str(project)}}
    )
    client.execute()
    network = "".join(o.get("text", "") for o in notebook.cells[0].outputs)
    assert "network: blocked" in network, network  # the kernel really had no network
    [chart] = [o for o in notebook.cells[3].outputs if o.output_type == "execute_result"]
    svg = chart.data["image/svg+xml"]
    assert svg.lstrip().startswith("<svg") and "Execution " in svg
    assert "first" in svg and "second" in svg  # the tasks' rows were drawn
    assert svg in chart.data["text/html"] and not _urls(chart.data["text/html"])
