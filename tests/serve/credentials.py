"""Credentials for the services the tests start: one token per scope, and one holding every scope."""

from pathlib import Path

import yaml

from crm_modes.serve.rest.access import token_hash

#: holder, scopes and token of each test credential, by name.
CREDENTIALS = {
    "all": ("ops-team", ["score", "read", "acknowledge", "admin"], "crm_test-all-6f1c"),
    "score": ("scoring-batch", ["score"], "crm_test-score-19ab"),
    "read": ("auditor", ["read"], "crm_test-read-77d0"),
    "acknowledge": ("Ana Risk", ["read", "acknowledge"], "crm_test-ack-3e42"),
    "admin": ("ml-platform", ["admin"], "crm_test-admin-a5b8"),
}


def write_credentials(folder: Path, jwt: dict | None = None) -> Path:
    """A credentials file in ``folder`` holding the hashes of :data:`CREDENTIALS` (and ``jwt``)."""
    entries = [
        {"holder": holder, "scopes": scopes, "hash": token_hash(token)}
        for holder, scopes, token in CREDENTIALS.values()
    ]
    path = folder / "credentials.yaml"
    path.write_text(yaml.safe_dump({"credentials": entries, **({"jwt": jwt} if jwt else {})}))
    return path


def bearer(name: str = "all") -> dict[str, str]:
    """The Authorization header of the credential ``name``."""
    return {"Authorization": f"Bearer {CREDENTIALS[name][2]}"}


#: No credential at all (an empty header is the same as none).
ANONYMOUS = {"Authorization": ""}
