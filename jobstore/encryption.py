"""Customer-supplied encryption keys (SSE-C on S3, CSEK on GCS) and KMS aliases."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from jobstore.errors import EncryptionKeyError

CUSTOMER_KEY_BYTES = 32


def is_kms_alias(value: object) -> bool:
    """True for an AWS KMS key reference such as ``alias/my-key`` or a key ARN."""
    return isinstance(value, str) and (value.startswith("alias/") or value.startswith("arn:aws:kms:"))


def load_customer_key(sse_key: str | bytes | None, sse_key_file: str | None) -> bytes | None:
    """Return the 32-byte customer key from ``sse_key`` or ``sse_key_file``, or None.

    A key may be given as 32 raw bytes, 32 ASCII characters, 64 hex digits or base64 of 32 bytes
    (Toil's key files hold 32 characters). A KMS alias is not a customer key: None is returned.
    """
    raw: bytes | None
    if sse_key is not None and not is_kms_alias(sse_key):
        raw = sse_key if isinstance(sse_key, bytes) else sse_key.encode()
        source = "Config.sseKey"
    elif sse_key_file:
        try:
            raw = Path(sse_key_file).expanduser().read_bytes()
        except OSError as error:
            raise EncryptionKeyError(
                f"Cannot read the encryption key file {sse_key_file!r}: {error.strerror}. Check Config.sseKeyFile."
            ) from None
        if is_kms_alias(raw.decode(errors="replace").strip()):
            return None
        source = f"the key file {sse_key_file!r}"
    else:
        return None
    return _decode_key(raw, source)


def _decode_key(raw: bytes, source: str) -> bytes:
    candidates = [raw, raw.strip()]
    stripped = raw.strip()
    try:
        candidates.append(binascii.unhexlify(stripped))
    except (binascii.Error, ValueError):
        pass
    try:
        candidates.append(base64.b64decode(stripped, validate=True))
    except (binascii.Error, ValueError):
        pass
    for candidate in candidates:
        if len(candidate) == CUSTOMER_KEY_BYTES:
            return candidate
    raise EncryptionKeyError(
        f"The encryption key in {source} is {len(stripped)} bytes long; a customer key must be "
        f"exactly {CUSTOMER_KEY_BYTES} bytes (raw, 64 hex digits, or base64). For KMS, give an "
        "alias such as 'alias/my-key'."
    )
