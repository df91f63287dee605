#!/usr/bin/env python3
"""Test fixtures for Tollgate's IdentityTests: a real OIDC provider, a static issuer, keys, tokens.

Run by the Swift tests as subprocesses; every server exits when its stdin reaches EOF, so a test
process that dies (even by a crash) cannot leak a server.

  check                   import what the tests need (fails if the packages are missing)
  serve-provider          run oidc-provider-mock (PyPI) on 127.0.0.1, a free port
  serve-static DIR        serve DIR's files on 127.0.0.1, a free port (a provider whose keys we control)
      both print one JSON line {"port": N} once listening, and count requests:
      GET /_fixture/requests answers {"GET /path": count, ...}
  keys DIR NAME:TYPE...   make private keys DIR/NAME.pem and public JWKs DIR/NAME.pub.json
                          (TYPE: rsa, rsa1024, ec, ed); the kid is NAME
  sign                    stdin: JSON array of {"key": pem path | null, "alg", "header": {...},
                          "claims": {...}, "hmac_secret_jwk": public JWK (HS* only)}; stdout: JSON
                          array of compact tokens. The header is exactly {"alg", "typ": "JWT"} + "header".
  login BASE SUB CLIENT_ID CLAIMS_JSON
                          the authorization-code flow against the mock: PUT /users/SUB with the
                          claims, GET the authorize page, POST its form, exchange the code; prints
                          the token endpoint's JSON answer
"""

import base64
import json
import os
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request


def fail(message):
    print(f"oidc_fixture: {message}", file=sys.stderr)
    sys.exit(2)


# --- servers -------------------------------------------------------------------------------------

class Counting:
    """WSGI middleware: counts requests by method and path, and reports the counts."""

    def __init__(self, app):
        self.app = app
        self.counts = {}
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        key = f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}"
        if key == "GET /_fixture/requests":
            with self.lock:
                body = json.dumps(self.counts).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
        return self.app(environ, start_response)


def static_app(root):
    root = os.path.realpath(root)

    def app(environ, start_response):
        path = os.path.realpath(os.path.join(root, environ.get("PATH_INFO", "/").lstrip("/")))
        if environ["REQUEST_METHOD"] != "GET" or not path.startswith(root + os.sep) or not os.path.isfile(path):
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
            return [b"not found"]
        with open(path, "rb") as f:
            body = f.read()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def serve(app):
    import logging
    import werkzeug.serving

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request lines on stderr
    server = werkzeug.serving.make_server("127.0.0.1", 0, Counting(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    print(json.dumps({"port": server.server_port}), flush=True)
    sys.stdin.read()  # until the test closes our stdin (or dies)
    server.shutdown()


def serve_provider():
    # The mock's own CLI sets this: the test provider speaks plain http on loopback.
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    try:
        import oidc_provider_mock
    except ImportError as error:
        fail(f"cannot import oidc_provider_mock ({error}); install it: pip install oidc-provider-mock==0.3.4")
    serve(oidc_provider_mock.app())


# --- keys and signatures -------------------------------------------------------------------------

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_int(value, length=None):
    length = length or (value.bit_length() + 7) // 8
    return b64u(value.to_bytes(length, "big"))


def make_keys(directory, specs):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    os.makedirs(directory, exist_ok=True)
    for spec in specs:
        name, kind = spec.split(":")
        if kind in ("rsa", "rsa1024"):
            key = rsa.generate_private_key(public_exponent=65537, key_size=1024 if kind == "rsa1024" else 2048)
            numbers = key.public_key().public_numbers()
            jwk = {"kty": "RSA", "kid": name, "n": b64u_int(numbers.n), "e": b64u_int(numbers.e)}
        elif kind == "ec":
            key = ec.generate_private_key(ec.SECP256R1())
            numbers = key.public_key().public_numbers()
            jwk = {"kty": "EC", "kid": name, "crv": "P-256", "x": b64u_int(numbers.x, 32), "y": b64u_int(numbers.y, 32)}
        elif kind == "ed":
            key = ed25519.Ed25519PrivateKey.generate()
            raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            jwk = {"kty": "OKP", "kid": name, "crv": "Ed25519", "x": b64u(raw)}
        else:
            fail(f"unknown key type {kind}")
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        with open(os.path.join(directory, name + ".pem"), "wb") as f:
            f.write(pem)
        with open(os.path.join(directory, name + ".pub.json"), "w") as f:
            json.dump(jwk, f)


def public_pem_of(jwk):
    """The PEM of an RSA public JWK: the 'secret' of the classic RS256-to-HS256 confusion attack."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def number(text):
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    key = rsa.RSAPublicNumbers(number(jwk["e"]), number(jwk["n"])).public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign_one(spec):
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    alg = spec["alg"]
    header = {"alg": alg, "typ": "JWT", **spec.get("header", {})}
    signing_input = (b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(spec["claims"]).encode())).encode()

    if alg.startswith("HS"):
        secret = public_pem_of(spec["hmac_secret_jwk"])
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
        signature = hmac.new(secret, signing_input, digest).digest()
    else:
        with open(spec["key"], "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        hash_alg = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}.get(alg[2:])
        if isinstance(key, rsa.RSAPrivateKey) and alg.startswith("RS"):
            signature = key.sign(signing_input, padding.PKCS1v15(), hash_alg)
        elif isinstance(key, rsa.RSAPrivateKey) and alg.startswith("PS"):
            signature = key.sign(signing_input, padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size),
                                 hash_alg)
        elif isinstance(key, ec.EllipticCurvePrivateKey) and alg == "ES256":
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        elif isinstance(key, ed25519.Ed25519PrivateKey) and alg == "EdDSA":
            signature = key.sign(signing_input)
        else:
            fail(f"cannot sign {alg} with {type(key).__name__}")
    return signing_input.decode() + "." + b64u(signature)


# --- the authorization-code flow -----------------------------------------------------------------

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the redirect carries the code: read it instead of following it


def login(base, sub, client_id, claims_json):
    opener = urllib.request.build_opener(NoRedirect)
    quoted = urllib.parse.quote(sub, safe="")

    put = urllib.request.Request(f"{base}/users/{quoted}", data=claims_json.encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    with opener.open(put, timeout=10) as response:
        if response.status != 204:
            fail(f"PUT /users/{sub} answered {response.status}")

    redirect_uri = "http://127.0.0.1:9/callback"  # never contacted
    state = "state-" + base64.urlsafe_b64encode(os.urandom(9)).decode()
    query = urllib.parse.urlencode({
        "client_id": client_id, "response_type": "code", "scope": "openid profile email",
        "redirect_uri": redirect_uri, "state": state, "nonce": "nonce-" + state,
    })
    authorize = f"{base}/oauth2/authorize?{query}"
    with opener.open(authorize, timeout=10) as response:
        page = response.read().decode()
        if response.status != 200 or 'name="sub"' not in page:
            fail("the authorize endpoint did not show its login form")

    form = urllib.parse.urlencode({"sub": sub}).encode()
    try:
        opener.open(urllib.request.Request(authorize, data=form, method="POST"), timeout=10)
        fail("the login form did not redirect")
    except urllib.error.HTTPError as redirect:
        if redirect.code != 302:
            fail(f"the login form answered {redirect.code}")
        location = urllib.parse.urlparse(redirect.headers["Location"])
    params = urllib.parse.parse_qs(location.query)
    if params.get("state") != [state] or "code" not in params:
        fail("the redirect has no code or a wrong state")

    exchange = urllib.request.Request(
        f"{base}/oauth2/token", method="POST",
        data=urllib.parse.urlencode({"grant_type": "authorization_code", "code": params["code"][0],
                                     "redirect_uri": redirect_uri}).encode(),
        headers={"Authorization": "Basic " + base64.b64encode(f"{client_id}:secret".encode()).decode(),
                 "Content-Type": "application/x-www-form-urlencoded"})
    with opener.open(exchange, timeout=10) as response:
        print(response.read().decode())


def main():
    if len(sys.argv) < 2:
        fail(__doc__)
    command, args = sys.argv[1], sys.argv[2:]
    if command == "serve-provider":
        serve_provider()
    elif command == "check":
        import importlib.metadata

        import cryptography  # noqa: F401
        import oidc_provider_mock  # noqa: F401
        print(importlib.metadata.version("oidc-provider-mock"))
    elif command == "serve-static" and len(args) == 1:
        serve(static_app(args[0]))
    elif command == "keys" and len(args) >= 2:
        make_keys(args[0], args[1:])
    elif command == "sign":
        print(json.dumps([sign_one(spec) for spec in json.load(sys.stdin)]))
    elif command == "login" and len(args) == 4:
        login(*args)
    else:
        fail(f"bad arguments: {sys.argv[1:]}")


if __name__ == "__main__":
    main()
