"""JobDescription and its JSON (de)serialisation.

Descriptions are persisted as JSON, never pickled: a catalog shared by many machines must not be a
way to run code on all of them. Any extra attribute set on a description round-trips as long as it
is a JSON value (None, bool, int, float, str, and lists and string-keyed dicts of those); anything
else is refused with ``TypeError`` (:class:`~jobstore.errors.JobDescriptionTypeError`, also a
``JobStoreError``) naming the attribute. Attributes whose names start with ``_`` are persisted like
any other (nothing set on a description is silently dropped).

Values that fit JSON but not the catalog's columns are refused before anything is written, with
:class:`~jobstore.errors.InvalidJobDescriptionError`: integers beyond the columns' range
(``memory`` / ``disk`` 64-bit, ``remainingTryCount`` and ``version`` 32-bit), names longer than
their columns, text that is not valid Unicode (lone surrogates) in the columns, and values nested
deeper than :data:`MAX_NESTING`.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from jobstore.errors import InvalidJobDescriptionError, JobDescriptionTypeError

#: Largest serialised description accepted (bytes of JSON). Far above any real description;
#: it exists so a runaway attribute fails loudly instead of bloating every catalog read.
MAX_DESCRIPTION_BYTES = 16 * 1024 * 1024

#: Deepest nesting of lists and dicts accepted in an attribute: far beyond any real description,
#: well below Python's recursion limit (the JSON encoder and decoder recurse once per level).
MAX_NESTING = 100

#: Ranges of the catalog's integer columns (memory and disk are BIGINT; remaining_tries and
#: version INTEGER, 32-bit on PostgreSQL), so an out-of-range value is refused here, not by SQL.
INT64_MAX = 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

#: Lengths of the catalog's text columns.
COLUMN_LENGTHS = {"jobName": 255, "unitName": 255, "state": 32}

#: Attributes the store manages or stores in columns of their own.
_CORE_FIELDS = ("jobStoreID", "requirements", "jobName", "unitName", "remainingTryCount", "state")
_MANAGED_FIELDS = ("version",)

#: The reporting states a description may be in. Free-form states are allowed too; these are the
#: ones jobstore's reports know.
KNOWN_STATES = ("pending", "running", "completed", "failed")


class JobDescription:
    """What a workflow engine needs to know about one job.

    Args:
        requirements: resource needs; ``memory`` and ``disk`` in bytes, ``cores`` a number.
            Other keys are allowed and persisted.
        jobName: the job's name (reports group by it).
        unitName: a finer name, e.g. the input it works on.
        remainingTryCount: how many more times the engine may try the job.
        state: a reporting state (``pending``, ``running``, ``completed``, ``failed`` or your own).
        **attributes: any further JSON-serialisable attributes.
    """

    jobStoreID: str | None
    version: int | None

    if TYPE_CHECKING:
        # Descriptions carry arbitrary extra attributes; tell the type checker so.
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    def __init__(
        self,
        requirements: dict[str, Any] | None = None,
        jobName: str = "",
        unitName: str = "",
        remainingTryCount: int = 1,
        state: str = "pending",
        **attributes: Any,
    ) -> None:
        self.jobStoreID = None
        self.version = None
        self.requirements = dict(requirements or {})
        self.jobName = jobName
        self.unitName = unitName
        self.remainingTryCount = remainingTryCount
        self.state = state
        for name, value in attributes.items():
            setattr(self, name, value)

    # --- requirements as properties, as in Toil ----------------------------------------------

    @property
    def memory(self) -> int | None:
        value = self.requirements.get("memory")
        return None if value is None else int(value)

    @memory.setter
    def memory(self, value: int | None) -> None:
        self.requirements["memory"] = value

    @property
    def cores(self) -> float | None:
        value = self.requirements.get("cores")
        return None if value is None else float(value)

    @cores.setter
    def cores(self, value: float | None) -> None:
        self.requirements["cores"] = value

    @property
    def disk(self) -> int | None:
        value = self.requirements.get("disk")
        return None if value is None else int(value)

    @disk.setter
    def disk(self, value: int | None) -> None:
        self.requirements["disk"] = value

    # --- comparison and display --------------------------------------------------------------

    def extra_attributes(self) -> dict[str, Any]:
        """Attributes beyond the core fields, as persisted."""
        return {
            name: value
            for name, value in vars(self).items()
            if name not in _CORE_FIELDS and name not in _MANAGED_FIELDS
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobDescription):
            return NotImplemented
        return description_fields(self) == description_fields(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return (
            f"JobDescription(jobStoreID={self.jobStoreID!r}, jobName={self.jobName!r}, "
            f"unitName={self.unitName!r}, state={self.state!r}, version={self.version!r})"
        )


def description_fields(job: JobDescription, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything persisted about a description except its store-managed version (``extra``: its
    ``extra_attributes()``, when the caller has them already)."""
    return {
        "jobStoreID": job.jobStoreID,
        "requirements": job.requirements,
        "jobName": job.jobName,
        "unitName": job.unitName,
        "remainingTryCount": job.remainingTryCount,
        "state": job.state,
        "extra": job.extra_attributes() if extra is None else extra,
    }


#: One encoder for every description (json.dumps with options builds a new one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)

#: Values that are JSON as they are: checked by type alone, without a call per value (every job
#: write validates its requirements and attributes).
_JSON_SCALAR_TYPES = frozenset({str, int, bool, type(None)})


def validate_version(version: object) -> None:
    """Raise unless ``version`` is what the store can compare against: None or an int in the
    catalog column's range. Called (through :func:`validate_description`) before any write, so a
    bad version never follows a committed change."""
    if version is None:
        return
    if isinstance(version, bool) or not isinstance(version, int):
        raise JobDescriptionTypeError(
            f"JobDescription.version must be None or the int the store set, not {type(version).__name__} "
            f"{_shown(version)}. Do not set it yourself: load_job returns it, update_job advances it."
        )
    if not 0 <= version <= INT32_MAX:
        raise InvalidJobDescriptionError(
            f"JobDescription.version {_shown(version)} is outside 0..{INT32_MAX}, so the store never issued it. "
            "Load the job again (load_job) to get its current version."
        )


def validate_description(job: JobDescription, extra: dict[str, Any] | None = None) -> None:
    """Raise JobDescriptionTypeError / InvalidJobDescriptionError unless ``job`` can be stored
    faithfully (``extra``: its ``extra_attributes()``, when the caller has them already)."""
    if not isinstance(job, JobDescription):
        raise JobDescriptionTypeError(f"Expected a jobstore.JobDescription, got {type(job).__name__}.")
    validate_version(job.version)
    requirements = job.requirements
    if not isinstance(requirements, dict):
        raise JobDescriptionTypeError(f"JobDescription.requirements must be a dict, not {type(requirements).__name__}.")
    for key in ("memory", "disk"):
        value = requirements.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise JobDescriptionTypeError(
                f"JobDescription.requirements[{key!r}] must be a non-negative int of bytes, got {_shown(value)}."
            )
        if value is not None and value > INT64_MAX:
            raise InvalidJobDescriptionError(
                f"JobDescription.requirements[{key!r}] is {_shown(value)}, more than the {INT64_MAX} "
                "bytes the catalog can hold. Give the real requirement in bytes."
            )
    cores = requirements.get("cores")
    if cores is not None and (
        isinstance(cores, bool) or not isinstance(cores, int | float) or not math.isfinite(cores) or cores < 0
    ):
        raise JobDescriptionTypeError(
            f"JobDescription.requirements['cores'] must be a non-negative number, got {_shown(cores)}."
        )
    if cores is not None and cores > INT64_MAX:
        raise InvalidJobDescriptionError(
            f"JobDescription.requirements['cores'] is {_shown(cores)}, more than the {INT64_MAX} the catalog can hold."
        )
    for name in ("jobName", "unitName", "state"):
        _check_column_text(name, getattr(job, name))
    tries = job.remainingTryCount
    if isinstance(tries, bool) or not isinstance(tries, int):
        raise JobDescriptionTypeError(f"JobDescription.remainingTryCount must be an int, got {_shown(tries)}.")
    if not INT32_MIN <= tries <= INT32_MAX:
        raise InvalidJobDescriptionError(
            f"JobDescription.remainingTryCount {_shown(tries)} is outside {INT32_MIN}..{INT32_MAX}, "
            "the range the catalog stores."
        )
    for name, value in requirements.items():
        if not isinstance(name, str):
            # Refused rather than converted: JSON would turn 1 into "1", and the key read back
            # would not be the key written.
            raise JobDescriptionTypeError(
                f"JobDescription.requirements has a key {_shown(name)} of type {type(name).__name__}; "
                "only str keys can be stored."
            )
        if type(value) not in _JSON_SCALAR_TYPES:
            _check_json_value(value, f"requirements[{name!r}]", 1)
    for name, value in (job.extra_attributes() if extra is None else extra).items():
        if type(value) not in _JSON_SCALAR_TYPES:
            _check_json_value(value, name, 1)


def _check_column_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise JobDescriptionTypeError(f"JobDescription.{name} must be a str, got {type(value).__name__}.")
    limit = COLUMN_LENGTHS[name]
    if len(value) > limit:
        raise InvalidJobDescriptionError(
            f"JobDescription.{name} is {len(value)} characters long; the catalog holds at most {limit}. "
            "Shorten it (keep long text in another attribute)."
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidJobDescriptionError(
            f"JobDescription.{name} holds {value[error.start]!r} at position {error.start}, which is not "
            "valid Unicode text (a lone surrogate) and cannot be stored in the catalog. Decode names "
            "from bytes with a real encoding (or errors='replace')."
        ) from None


def _shown(value: object) -> str:
    """``repr(value)``, cut short: a huge int's repr alone would fail (str conversion limit) or
    fill the message."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an int of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 100 else text[:100] + "..."


def _check_json_value(value: Any, where: str, depth: int) -> None:
    if value is None or isinstance(value, bool | int | str):
        return  # an int too long for JSON text is caught where it is encoded
    if isinstance(value, float):
        if not math.isfinite(value):
            raise JobDescriptionTypeError(f"JobDescription attribute {where} is {value!r}, which JSON cannot hold.")
        return
    if depth > MAX_NESTING:
        # Also how a list or dict that contains itself ends up: it is infinitely deep.
        raise InvalidJobDescriptionError(
            f"JobDescription attribute {where.split('[', 1)[0]} is nested more than {MAX_NESTING} levels deep "
            "(or contains itself). Flatten it, or store it in a file (write_file)."
        )
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if type(item) not in _JSON_SCALAR_TYPES:
                _check_json_value(item, f"{where}[{index}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise JobDescriptionTypeError(
                    f"JobDescription attribute {where} has a key {_shown(key)} of type "
                    f"{type(key).__name__}; only str keys can be stored."
                )
            if type(item) not in _JSON_SCALAR_TYPES:
                _check_json_value(item, f"{where}[{key!r}]", depth + 1)
        return
    raise JobDescriptionTypeError(
        f"JobDescription attribute {where} is a {type(value).__name__}, which cannot be stored: "
        "only JSON values (None, bool, int, float, str, list, dict with str keys) are persisted."
    )


def serialise_description(job: JobDescription) -> str:
    """The JSON text stored in the catalog for ``job`` (validated first)."""
    extra = job.extra_attributes()
    validate_description(job, extra)
    try:
        text = _ENCODER.encode(description_fields(job, extra))
    except (ValueError, RecursionError) as error:
        # What validation cannot see cheaply (an int whose digits pass the bit bound but not the
        # digit limit, a scalar requirement's huge int): still typed, nothing written.
        raise InvalidJobDescriptionError(
            f"JobDescription {job.jobStoreID!r} cannot be written as JSON ({type(error).__name__}: "
            f"{str(error)[:200]}). Store large or deeply nested values in a file (write_file)."
        ) from None
    if len(text) > MAX_DESCRIPTION_BYTES:
        raise InvalidJobDescriptionError(
            f"JobDescription {job.jobStoreID!r} serialises to {len(text)} bytes, more than the "
            f"{MAX_DESCRIPTION_BYTES} allowed. Store large data in a file (write_file) and keep "
            "its file ID on the description instead."
        )
    return text


def deserialise_description(text: str, version: int) -> JobDescription:
    """Rebuild a description from its stored JSON text and row version.

    A row that is not what ``serialise_description`` writes (damaged, or edited by hand) raises
    InvalidJobDescriptionError rather than whatever the JSON decoder or a missing key would.
    """
    try:
        fields = json.loads(text)
        job = JobDescription(
            requirements=fields["requirements"],
            jobName=fields["jobName"],
            unitName=fields["unitName"],
            remainingTryCount=fields["remainingTryCount"],
            state=fields["state"],
            **fields["extra"],
        )
        job.jobStoreID = fields["jobStoreID"]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        raise InvalidJobDescriptionError(
            f"A stored job description is damaged ({type(error).__name__}: {str(error)[:200]}); it was "
            "not written by jobstore as it is. Restore the catalog from a backup or delete the job."
        ) from None
    job.version = version
    return job
