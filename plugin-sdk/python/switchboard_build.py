"""``switchboard-build``: turn a Python plugin folder into a Switchboard component.

    switchboard-build PLUGIN_DIR [-o OUT.wasm] [--module app] [--wit WIT_DIR]

The folder holds the plugin module (``app.py`` by default) defining ``Events = export(...)``.
The ``switchboard_plugin`` package beside this file is added to the component; componentize-py
generates the WIT bindings it imports. Without ``--wit`` the WIT folder is ``$SWITCHBOARD_WIT``
or the ``wit/`` of the repository this SDK lives in.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

SDK_DIR = Path(__file__).resolve().parent


def find_wit() -> Path:
    env = os.environ.get("SWITCHBOARD_WIT")
    if env:
        return Path(env)
    for parent in SDK_DIR.parents:
        if (parent / "wit" / "switchboard.wit").is_file():
            return parent / "wit"
    sys.exit("switchboard-build: no wit/switchboard.wit found; pass --wit DIR or set SWITCHBOARD_WIT")


def componentize_py() -> str:
    here = Path(sys.executable).parent / "componentize-py"
    if here.is_file():
        return str(here)
    found = shutil.which("componentize-py")
    if not found:
        sys.exit("switchboard-build: componentize-py is not installed: pip install componentize-py==0.25.1")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchboard-build", description=__doc__.split("\n\n")[0])
    parser.add_argument("plugin_dir", type=Path, help="the plugin folder (holds app.py)")
    parser.add_argument("-o", "--output", type=Path, help="the component to write (default: PLUGIN_DIR/NAME.wasm)")
    parser.add_argument("--module", default="app", help="the plugin module name (default: app)")
    parser.add_argument("--wit", type=Path, help="the WIT folder (default: the repository's wit/)")
    args = parser.parse_args(argv)
    plugin_dir = args.plugin_dir.resolve()
    if not (plugin_dir / f"{args.module}.py").is_file() and not (plugin_dir / args.module).is_dir():
        sys.exit(f"switchboard-build: no {args.module}.py in {plugin_dir}")
    out = args.output or plugin_dir / f"{plugin_dir.name}.wasm"
    wit = args.wit or find_wit()
    cmd = [
        componentize_py(), "-d", str(wit), "-w", "plugin-http", "componentize", args.module,
        "-p", str(plugin_dir), "-p", str(SDK_DIR), "-o", str(out),
    ]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
