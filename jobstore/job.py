"""JobDescription and its JSON (de)serialisation.

Descriptions are persisted as JSON, never pickled: a catalog shared by many machines must not be a
way to run code on all of them. Any extra attribute set on a description round-trips as long as it
is a JSON value (None, bool, int, float, str, and lists and string-keyed dicts of those); anything
else is refused with ``TypeError`` naming the attribute.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from jobstore.errors import InvalidJobDescriptionError

#: Largest serialised description accepted (bytes of JSON). Far above any real description;
#: it exists so a runaway attribute fails loudly instead of bloating every catalog read.
MAX_DESCRIPTION_BYTES = 16 * 1024 * 1024

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
            if name not in _CORE_FIELDS and name not in _MANAGED_FIELDS and not name.startswith("_")
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


def validate_description(job: JobDescription, extra: dict[str, Any] | None = None) -> None:
    """Raise TypeError / InvalidJobDescriptionError unless ``job`` can be stored faithfully
    (``extra``: its ``extra_attributes()``, when the caller has them already)."""
    if not isinstance(job, JobDescription):
        raise TypeError(f"Expected a jobstore.JobDescription, got {type(job).__name__}.")
    if not isinstance(job.requirements, dict):
        raise TypeError(f"JobDescription.requirements must be a dict, not {type(job.requirements).__name__}.")
    for key in ("memory", "disk"):
        value = job.requirements.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise TypeError(f"JobDescription.requirements[{key!r}] must be a non-negative int of bytes, got {value!r}.")
    cores = job.requirements.get("cores")
    if cores is not None and (
        isinstance(cores, bool) or not isinstance(cores, int | float) or not math.isfinite(cores) or cores < 0
    ):
        raise TypeError(f"JobDescription.requirements['cores'] must be a non-negative number, got {cores!r}.")
    for name in ("jobName", "unitName", "state"):
        if not isinstance(getattr(job, name), str):
            raise TypeError(f"JobDescription.{name} must be a str, got {type(getattr(job, name)).__name__}.")
    tries = job.remainingTryCount
    if isinstance(tries, bool) or not isinstance(tries, int):
        raise TypeError(f"JobDescription.remainingTryCount must be an int, got {tries!r}.")
    for name, value in job.requirements.items():
        if type(value) not in _JSON_SCALAR_TYPES:
            _check_json_value(value, f"requirements[{name!r}]")
    for name, value in (job.extra_attributes() if extra is None else extra).items():
        if type(value) not in _JSON_SCALAR_TYPES:
            _check_json_value(value, name)


def _check_json_value(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"JobDescription attribute {where} is {value!r}, which JSON cannot hold.")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json_value(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"JobDescription attribute {where} has a key {key!r} of type "
                    f"{type(key).__name__}; only str keys can be stored."
                )
            _check_json_value(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"JobDescription attribute {where} is a {type(value).__name__}, which cannot be stored: "
        "only JSON values (None, bool, int, float, str, list, dict with str keys) are persisted."
    )


def serialise_description(job: JobDescription) -> str:
    """The JSON text stored in the catalog for ``job`` (validated first)."""
    extra = job.extra_attributes()
    validate_description(job, extra)
    text = _ENCODER.encode(description_fields(job, extra))
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
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidJobDescriptionError(
            f"A stored job description is damaged ({type(error).__name__}: {str(error)[:200]}); it was "
            "not written by jobstore as it is. Restore the catalog from a backup or delete the job."
        ) from None
    job.version = version
    return job
