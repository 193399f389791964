"""``python -m jobstore`` is the ``jobstore`` command."""

from jobstore.cli import main

main()
