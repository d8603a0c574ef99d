"""Who may do what: credentials with scopes, and one dependency that checks every route.

Scopes: ``score`` (``POST /v1/score``), ``read`` (alerts and facility histories: client data),
``acknowledge`` (acknowledging an alert) and ``admin`` (hot reload). A caller sends
``Authorization: Bearer <token>``, where the token is either

- an opaque token made by ``crm-modes credentials new``: the service's credentials file holds only
  its salted SHA-256 hash, with the holder's name and scopes (the token itself is 256 random bits,
  so a fast hash is enough: a slow one protects guessable secrets, see
  ``docs/decisions/020-service-credentials.md``); or
- a JWT signed by the bank's identity provider, verified against a configured public key or JWKS
  file (asymmetric algorithms only), with its audience, expiry and issuer checked; the holder is a
  claim (``sub``) and the scopes another (``scope``, space-separated, or a list).

The person who acknowledges an alert is the credential's holder, never a name in the body.
A service with no credential configured is open (every caller holds every scope, as
``anonymous``); ``crm-modes serve`` refuses to start so on any interface but the loopback unless
told ``--open``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import jwt
import yaml
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, Field, ValidationError, model_validator

from crm_modes.shared.configuration import FrozenConfig, invalid_file, load_yaml_model
from crm_modes.shared.errors import InputError
from crm_modes.shared.text import storable, text_problem

#: The environment variable with the credentials file's path, or its entries themselves (YAML or
#: JSON starting with ``credentials:``, ``jwt:`` or ``{``); ``--credentials FILE`` comes first.
CREDENTIALS_VARIABLE = "CRM_MODES_CREDENTIALS"
#: The plain shared token of earlier versions; no longer read (a service refuses to start with it).
RETIRED_TOKEN_VARIABLE = "CRM_MODES_ADMIN_TOKEN"
#: Interfaces a service without credentials may listen on.
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_HASH_PREFIX = "sha256"
_TOKEN_PREFIX = "crm_"


class Scope(StrEnum):
    score = "score"
    read = "read"
    acknowledge = "acknowledge"
    admin = "admin"


class Credential(FrozenConfig):
    """One holder's token, as its salted hash, and what it may do."""

    holder: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(storable)]
    """Who holds the token: shown in the access log and as the person who acknowledges an alert."""
    scopes: tuple[Scope, ...] = Field(min_length=1)
    """What the token may do: any of score, read, acknowledge, admin."""
    hash: str = Field(pattern=r"^sha256\$[0-9a-f]{32}\$[0-9a-f]{64}$")
    """``sha256$<salt>$<digest>``, as ``crm-modes credentials new`` prints it; never the token itself."""


class JwtConfig(FrozenConfig):
    """Signed tokens from the bank's identity provider."""

    public_key: Path | None = None
    """A PEM file with the provider's public key (this, or ``jwks``)."""
    jwks: Path | None = None
    """A JSON Web Key Set file (keys chosen by the token's ``kid``); this, or ``public_key``."""
    audience: str = Field(min_length=1)
    """The audience a token must name (``aud``)."""
    issuer: str | None = None
    """The issuer a token must name (``iss``), if set."""
    algorithms: tuple[
        Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"], ...
    ] = ("RS256",)
    """Signature algorithms accepted (asymmetric only: the service holds no signing secret)."""
    scopes_claim: str = "scope"
    """The claim with the scopes: a space-separated string or a list."""
    holder_claim: str = "sub"
    """The claim naming the holder."""
    leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    """Clock skew allowed when checking ``exp`` and ``nbf``."""

    @model_validator(mode="after")
    def _one_key_source(self) -> JwtConfig:
        if (self.public_key is None) == (self.jwks is None):
            raise ValueError("give exactly one of public_key and jwks")
        return self


class AccessConfig(FrozenConfig):
    """A service's credentials file (``crm-modes serve --credentials FILE``)."""

    credentials: tuple[Credential, ...] = ()
    """Opaque tokens, each as its salted hash with its holder and scopes."""
    jwt: JwtConfig | None = None
    """Also accept JWTs signed by the bank's identity provider."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, and what they may do."""

    holder: str
    scopes: frozenset[Scope]


ANONYMOUS = Principal("anonymous", frozenset(Scope))


def new_token() -> str:
    """A fresh opaque token (256 random bits)."""
    return _TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str, salt: str | None = None) -> str:
    """``sha256$<salt>$<digest>`` of ``token`` (a fresh salt unless given)."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.sha256(bytes.fromhex(salt) + token.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{_HASH_PREFIX}${salt}${digest}"


def _read_keys(config: JwtConfig, base: Path) -> tuple[Any, dict[str, Any]]:
    """(the one public key, or None; keys by ``kid`` from a JWKS file)."""
    path = base / (config.public_key or config.jwks)  # type: ignore[operator]
    try:
        text = path.read_text()
    except OSError as error:
        raise InputError(f"JWT key file {path}: cannot read it ({error.strerror})") from None
    if config.public_key is not None:
        return text, {}
    try:
        key_set = jwt.PyJWKSet.from_json(text)
    except (jwt.PyJWKSetError, jwt.InvalidKeyError, json.JSONDecodeError, ValueError) as error:
        raise InputError(f"JWKS file {path}: {error}") from None
    return None, {key.key_id or "": key.key for key in key_set.keys}


class Gatekeeper:
    """Checks a bearer token against the credentials (and JWT settings) a service was given."""

    def __init__(self, config: AccessConfig | None, base: Path = Path()) -> None:
        self.config = config
        self.open = config is None or (not config.credentials and config.jwt is None)
        self._key, self._keys = (
            (None, {}) if config is None or config.jwt is None else _read_keys(config.jwt, base)
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None) -> Gatekeeper:
        """The gatekeeper of a credentials file (None: ``$CRM_MODES_CREDENTIALS``, else an open service).

        Raises:
            InputError: the file is missing or invalid, or the retired plain-token variable is set.
        """
        if os.environ.get(RETIRED_TOKEN_VARIABLE):
            raise InputError(
                f"{RETIRED_TOKEN_VARIABLE} (a plain shared token) is no longer read: make a token per "
                "holder with `crm-modes credentials new` and start the service with --credentials FILE"
            )
        given = path or os.environ.get(CREDENTIALS_VARIABLE)
        if not given:
            return cls(None)
        if path is None and given.lstrip().startswith(("{", "credentials:", "jwt:")):
            return cls(_inline(given))  # the variable holds the entries themselves
        return cls(load_yaml_model(given, AccessConfig), Path(given).resolve().parent)

    def principal(self, token: str | None) -> Principal:
        """Who ``token`` belongs to; an HTTP 401 when it is missing or belongs to nobody."""
        if self.open:
            return ANONYMOUS
        if not token:
            raise _unauthorized("send 'Authorization: Bearer <token>'")
        if token.count(".") == 2 and self.config is not None and self.config.jwt is not None:
            return self._from_jwt(token, self.config.jwt)
        given = token.encode("utf-8", "surrogatepass")
        found = None
        for credential in self.config.credentials if self.config else ():
            _, salt, digest = credential.hash.split("$")
            computed = hashlib.sha256(bytes.fromhex(salt) + given).hexdigest()
            if hmac.compare_digest(computed, digest):  # every hash compared: no early exit to time
                found = found or credential
        if found is None:
            raise _unauthorized("the token matches no credential of this service")
        return Principal(found.holder, frozenset(found.scopes))

    def _from_jwt(self, token: str, config: JwtConfig) -> Principal:
        try:
            key = self._key
            if key is None:
                kid = jwt.get_unverified_header(token).get("kid") or ""
                key = self._keys.get(kid) or (
                    next(iter(self._keys.values())) if len(self._keys) == 1 else None
                )
                if key is None:
                    raise _unauthorized("the token's key id matches no key of this service")
            claims = jwt.decode(
                token,
                key,
                algorithms=list(config.algorithms),
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway_seconds,
                options={"require": ["exp", config.holder_claim]},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            raise _unauthorized(f"the token was refused: {type(error).__name__}") from None
        holder = claims.get(config.holder_claim)
        if not isinstance(holder, str) or not holder or len(holder) > 200 or text_problem(holder):
            raise _unauthorized(f"the token's {config.holder_claim!r} claim is not a usable name")
        granted = claims.get(config.scopes_claim, [])
        names = granted.split() if isinstance(granted, str) else granted if isinstance(granted, list) else []
        scopes = frozenset(
            Scope(name) for name in names if isinstance(name, str) and name in Scope.__members__
        )
        return Principal(holder, scopes)


def _inline(text: str) -> AccessConfig:
    """Credentials given in the environment variable itself (YAML or JSON)."""
    try:
        return AccessConfig.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as error:
        raise InputError(f"{CREDENTIALS_VARIABLE}: not YAML or JSON ({error})") from None
    except ValidationError as error:
        raise invalid_file(f"${CREDENTIALS_VARIABLE}", error) from None


def _unauthorized(why: str) -> HTTPException:
    return HTTPException(
        status_code=401, detail=f"not authenticated: {why}", headers={"WWW-Authenticate": "Bearer"}
    )


_bearer = HTTPBearer(auto_error=False, description="A token from `crm-modes credentials new`, or a JWT.")


def authorize(request: Request, scope: Scope, token: str | None) -> Principal:
    """The caller of ``request`` if it holds ``scope`` (401: unknown caller, 403: scope lacking).

    Decided once per request: the route class asks before a body is read, the dependency after.
    """
    principal = request.scope.get("crm_modes.principal")
    if principal is None:
        gatekeeper: Gatekeeper = request.app.state.access
        principal = request.scope["crm_modes.principal"] = gatekeeper.principal(token)
    if scope not in principal.scopes:
        raise HTTPException(
            status_code=403, detail=f"{principal.holder!r} lacks the {scope.value!r} scope this route needs"
        )
    return principal


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (the scheme in any case), else None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def requires(scope: Scope | None) -> Any:
    """The access dependency of a route: ``scope`` needed, or None for a public route (health).

    Every route declares one (a test checks), so no route is left unchecked by mistake.
    """

    def check(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        if scope is None:
            return ANONYMOUS
        return authorize(request, scope, credentials.credentials if credentials else None)

    check.scope = scope  # type: ignore[attr-defined]  # read by the route class and by a test
    return Depends(check)


def route_scope(dependencies: list[Any]) -> Scope | None:
    """The scope a route's dependencies (FastAPI's ``Dependant.dependencies``) ask for, if any."""
    for dependency in dependencies:
        scope = getattr(dependency.call, "scope", None)
        if scope is not None:
            return scope
    return None
