"""A local stand-in for deployment: copy the build into a target folder and record a manifest."""

import json
import shutil
import sys
import time
from pathlib import Path

source, target = Path(sys.argv[1]), Path(sys.argv[2])
if not source.exists():
    sys.exit(f"nothing to deploy: {source} does not exist")
target.mkdir(parents=True, exist_ok=True)
copied = []
for item in sorted(source.glob("*")):
    if item.is_file():
        shutil.copy2(item, target / item.name)
        copied.append(item.name)
manifest = {"deployed_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "files": copied}
(target / "manifest.json").write_text(json.dumps(manifest, indent=2))
print(json.dumps({"target": str(target), "files": len(copied)}))
