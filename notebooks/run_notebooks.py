"""Executes every notebook in notebooks/ top to bottom on a run's data, as CI does; exits non-zero on
the first error, naming the notebook and the cell.

    python notebooks/run_notebooks.py DATA_DIR RUN_DIR [--out DIR]

DATA_DIR holds the stored tables, RUN_DIR a `cablewatch-analyzer run` output (findings.parquet,
findings.json, run.json). With --out, the executed notebooks (with their outputs and plots) are
written there.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args()
    os.environ["CABLEWATCH_DATA"] = str(args.data.resolve())
    os.environ["CABLEWATCH_RUN"] = str(args.run.resolve())
    notebooks = sorted(HERE.glob("*.ipynb"))
    if not notebooks:
        print(f"no notebooks in {HERE}", file=sys.stderr)
        return 1
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        started = time.monotonic()
        client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}})
        try:
            client.execute()
        except CellExecutionError as e:
            print(f"{path.name}: a cell failed:\n{e}", file=sys.stderr)
            return 1
        images = sum(
            1 for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", []) if "image/png" in o.get("data", {})
        )
        print(f"{path.name}: {len(nb.cells)} cells ran in {time.monotonic() - started:.1f} s, {images} plots")
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, args.out / path.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
