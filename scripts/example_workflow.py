"""Run the example workflow on the embedded default (SQLite + local directory).

    python scripts/example_workflow.py [DIRECTORY]

Interrupt it (Ctrl-C, or kill) and run it again: it resumes from the store without redoing
committed work. The same workflow is available as ``jobstore demo``.
"""

from __future__ import annotations

import sys

from jobstore.demo import run_demo

if __name__ == "__main__":
    run_demo(sys.argv[1] if len(sys.argv) > 1 else "./jobstore-demo", pause=0.2)
