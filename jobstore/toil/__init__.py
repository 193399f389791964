"""Running real Toil workflows on jobstore (the ``toil`` extra). See docs/TOIL.md."""
