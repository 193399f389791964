"""Errors in the command line's words, and the cause of a catalog server that cannot be reached.

The library's messages are written for programs (``Config.catalog``, ``initialize()``); a person
at the command line sets ``--catalog`` or an environment variable and runs a command instead.
:func:`in_cli_words` rewrites those phrases (the library's wording stays the library's).

:func:`check_reachable` runs before a command opens a catalog on a network database: the catalog's
own retries take ~10 s and end with the driver's class name only, while a DNS lookup and one TCP
connect name the cause (unknown host, connection refused, timed out) and where, in milliseconds.
"""

from __future__ import annotations

import errno
import socket

from jobstore.errors import JobStoreError

#: Library phrases -> what a command-line user does instead. Longest first (some contain others).
_PHRASES = (
    (
        "Check the locator, or call initialize() to create it.",
        "Check the LOCATOR: commands other than `jobstore demo` open an existing store (for the demo's, "
        "give DIR/store).",
    ),
    (
        "set Config.catalog (or the JOBSTORE_CATALOG environment variable) to a SQLAlchemy URL",
        "pass --catalog with a SQLAlchemy URL, or set JOBSTORE_CATALOG to one",
    ),
    ("set Config.blobStore to", "set JOBSTORE_BLOB_STORE to"),
    ("Unset Config.catalog", "Drop --catalog (and unset JOBSTORE_CATALOG)"),
    ("Unset Config.blobStore", "Unset JOBSTORE_BLOB_STORE"),
    ("Config.catalog=", "--catalog="),
    ("Config.blobStore=", "JOBSTORE_BLOB_STORE="),
    ("Config.catalog", "--catalog (or JOBSTORE_CATALOG)"),
    ("Config.blobStore", "JOBSTORE_BLOB_STORE"),
    ("Config.awsRegion", "the REGION of the locator"),
    ("call initialize() to create it", "create it first"),
    ("(initialize())", "(a workflow's leader creates it)"),
    ("initialize()", "creating the store"),
    ("resume()", "opening the store"),
)


def in_cli_words(message: str) -> str:
    """``message`` with the API's words replaced by the options and variables a CLI user sets."""
    for api, cli in _PHRASES:
        message = message.replace(api, cli)
    return message


class CatalogUnreachableError(JobStoreError):
    """The catalog's database server cannot be reached (the cause and the address are in the message)."""


#: How long the TCP probe waits; a server that does not answer this fast is reported as a timeout.
PROBE_TIMEOUT = 5.0


def check_reachable(catalog_url: str) -> None:
    """Raise CatalogUnreachableError if a network catalog's host is unknown, refuses or times out."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(catalog_url)
    except ArgumentError:
        return  # not ours to judge here: the catalog says what is wrong with it
    if not url.drivername.startswith("postgresql"):
        return
    host = url.host or "localhost"
    port = url.port or 5432
    if host.startswith("/"):
        return  # a Unix socket directory: libpq's own message is precise
    where = f"the PostgreSQL catalog at {host}:{port}"
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise CatalogUnreachableError(
            f"cannot reach {where}: the host name {host!r} does not resolve (DNS: {error.strerror}); "
            "check the host in LOCATOR or --catalog."
        ) from None
    family, kind, proto, _name, address = addresses[0]
    with socket.socket(family, kind, proto) as probe:
        probe.settimeout(PROBE_TIMEOUT)
        try:
            probe.connect(address)
        except TimeoutError:
            raise CatalogUnreachableError(
                f"cannot reach {where}: the connection timed out after {PROBE_TIMEOUT:.0f} s (a firewall, "
                "or a host that is down); check the host and port in LOCATOR or --catalog."
            ) from None
        except OSError as error:
            if error.errno == errno.ECONNREFUSED:
                cause = "connection refused (no server listens there: is PostgreSQL running, on that port?)"
            else:
                cause = f"{error.strerror or error}"
            raise CatalogUnreachableError(f"cannot reach {where}: {cause}.") from None
