"""Benchmark: the CPU rehearsal of the whole paper study (tests/rehearsal/run.py), printing what ran and the wall
times (preparation, the DAG, the report). Run alone on the machine: nothing else may compete for the cores.

    .venv/bin/python benchmarks/rehearsal.py --workdir ../rehearsal
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from rehearsal.run import main

if __name__ == "__main__":
    sys.exit(main())
