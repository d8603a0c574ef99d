"""Who may do what: every route declares its access, tokens are kept as salted hashes, JWTs are
verified (signature, expiry, audience), and a service without credentials stays on the loopback."""

import datetime as dt
import json
import subprocess

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import HTTPException
from fastapi.routing import APIRoute

from crm_modes.serve.rest.access import AccessConfig, Gatekeeper, Scope, route_scope, token_hash
from crm_modes.serve.rest.app import ROUTERS, create_app
from crm_modes.shared.errors import InputError

PUBLIC = {"/health", "/ready", "/version"}


def test_every_route_declares_who_may_call_it():
    app = create_app("models:/none", load_at_start=False)
    routes = [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    assert {route.path for route in routes} == set(app.openapi()["paths"])  # no route elsewhere
    for route in routes:
        declared = [d for d in route.dependant.dependencies if hasattr(d.call, "scope")]
        assert len(declared) == 1, route.path  # one access dependency each, public ones included
        assert (route_scope(route.dependant.dependencies) is None) == (route.path in PUBLIC), route.path


def test_a_token_is_kept_as_a_salted_hash_and_matched_only_by_itself():
    first, second = token_hash("crm_secret"), token_hash("crm_secret")
    assert first != second  # salted
    assert "crm_secret" not in first
    config = AccessConfig.model_validate(
        {"credentials": [{"holder": "ana", "scopes": ["read"], "hash": first}]}
    )
    gatekeeper = Gatekeeper(config)
    assert gatekeeper.principal("crm_secret").holder == "ana"
    assert gatekeeper.principal("crm_secret").scopes == {Scope.read}
    for wrong in ("crm_secreT", "", None, "crm_secret ", "a.b.c"):
        with pytest.raises(HTTPException) as refused:
            gatekeeper.principal(wrong)
        assert refused.value.status_code == 401


def test_a_credentials_file_is_checked_strictly(tmp_path):
    path = tmp_path / "credentials.yaml"
    path.write_text("credentials:\n  - holder: ana\n    scopes: [read, delete]\n    hash: crm_plain_token\n")
    with pytest.raises(InputError) as refused:
        Gatekeeper.from_file(path)
    assert "credentials.0.scopes.1" in str(refused.value)
    assert "credentials.0.hash" in str(refused.value)  # a plain token is not a hash


def test_the_retired_plain_token_variable_stops_the_service(monkeypatch):
    monkeypatch.setenv("CRM_MODES_ADMIN_TOKEN", "x")
    with pytest.raises(InputError, match="no longer read"):
        Gatekeeper.from_file(None)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jwt")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = folder / "idp.pem"
    public.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True) | {"kid": "k1"}
    jwks = folder / "jwks.json"
    jwks.write_text(jwt.api_jws.json.dumps({"keys": [jwk]}))
    return {"private": private, "other": other, "pem": public, "jwks": jwks}


def sign(key, **claims) -> str:
    now = dt.datetime.now(dt.UTC)
    payload = {
        "sub": "ana@bank",
        "aud": "crm-modes",
        "scope": "read acknowledge",
        "exp": now + dt.timedelta(minutes=5),
    }
    return jwt.encode(payload | claims, key, algorithm="RS256", headers={"kid": "k1"})


@pytest.mark.parametrize("source", ["pem", "jwks"])
def test_a_jwt_is_verified_and_its_claims_give_holder_and_scopes(keys, source):
    setting = {"public_key": str(keys["pem"])} if source == "pem" else {"jwks": str(keys["jwks"])}
    gatekeeper = Gatekeeper(AccessConfig.model_validate({"jwt": {**setting, "audience": "crm-modes"}}))
    principal = gatekeeper.principal(sign(keys["private"]))
    assert principal.holder == "ana@bank"
    assert principal.scopes == {Scope.read, Scope.acknowledge}
    assert gatekeeper.principal(sign(keys["private"], scope=["score", "unknown", {"a": 1}, 3])).scopes == {
        Scope.score
    }
    refused = {
        "wrong signature": sign(keys["other"]),
        "expired": sign(keys["private"], exp=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)),
        "wrong audience": sign(keys["private"], aud="another-service"),
        "no holder": sign(keys["private"], sub=""),
        "unsigned": jwt.encode({"sub": "ana@bank", "aud": "crm-modes", "exp": 2**40}, None, algorithm="none"),
        "symmetric": jwt.encode(
            {"sub": "x", "aud": "crm-modes", "exp": 2**40}, "secret" * 6, algorithm="HS256"
        ),
    }
    for why, token in refused.items():
        with pytest.raises(HTTPException) as answer:
            gatekeeper.principal(token)
        assert answer.value.status_code == 401, why


def test_a_service_without_credentials_stays_on_the_loopback(cli):
    refused = subprocess.run(
        [cli, "serve", "--host", "0.0.0.0", "--model", "models:/none"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "no credentials configured" in refused.stderr
    assert "--open" in refused.stderr


def test_credentials_may_be_given_in_the_environment_itself(monkeypatch):
    entry = {"holder": "batch", "scopes": ["score"], "hash": token_hash("crm_env")}
    monkeypatch.setenv("CRM_MODES_CREDENTIALS", json.dumps({"credentials": [entry]}))
    assert Gatekeeper.from_file(None).principal("crm_env").holder == "batch"
    monkeypatch.setenv(
        "CRM_MODES_CREDENTIALS", "credentials:\n  - holder: x\n    scopes: [score]\n    hash: plain\n"
    )
    with pytest.raises(InputError, match=r"\$CRM_MODES_CREDENTIALS: credentials.0.hash"):
        Gatekeeper.from_file(None)
