"""Where bytes live: the plumbing of each storage provider that blob stores and URL handlers share.

``jobstore.blobs`` (where a store keeps its blobs) and ``jobstore.urls`` (where files are imported
from and exported to) talk to the same providers: the local file system, S3 and Google Cloud
Storage. What both need (what a ``file:`` URL names, making a client from a Config, the retry
policy, translating a provider's exceptions into ``jobstore.errors``) is here, one module per
provider, below both of them, so that neither package imports the other (tests/test_layers.py).

Importing this package imports no provider library; each module imports its own.
"""
