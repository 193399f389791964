"""Maintenance of stores: statistics, orphans, garbage collection, fsck, copying between backends."""
