import tempfile

#: Where the servers keep their files: the temporary directory when the suite was loaded. Fixed
#: here because tests/toil/conftest.py points ``tempfile`` at a package-scoped directory of its own
#: (to collect Toil's leftovers), and a session server first started inside it would be unreadable
#: to the ``postgres`` account and deleted under the running server when that package ends.
SERVER_TMP = tempfile.gettempdir()
