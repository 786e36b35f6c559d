"""Validate the built wheel: it exists, is a zip, and carries the package and its metadata."""

import json
import sys
import zipfile
from pathlib import Path

wheels = sorted(Path(sys.argv[1] if len(sys.argv) > 1 else "dist").glob("jupyter_workflows-*.whl"))
if not wheels:
    sys.exit("no jupyter_workflows wheel in dist/: did the build step run?")
wheel = wheels[-1]
with zipfile.ZipFile(wheel) as archive:
    names = archive.namelist()
required = ["jupyter_workflows/__init__.py", "jupyter_workflows/engine/run.py"]
missing = [name for name in required if name not in names]
if missing or not any(name.endswith(".dist-info/METADATA") for name in names):
    sys.exit(f"{wheel.name} is incomplete: missing {missing or 'METADATA'}")
print(json.dumps({"wheel": str(wheel), "files": len(names)}))
