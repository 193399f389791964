"""Real Toil on jobstore: Toil's conformance suite and real workflows (the ``toil`` extra)."""
