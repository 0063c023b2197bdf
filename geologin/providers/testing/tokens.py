"""Keys and token forgery for the plugin kit: the keys a contract's identity server signs with, and the
broken tokens (unsigned, HMAC-keyed with the public key, tampered) a plugin must refuse."""
import base64
import hashlib
import hmac
import json
import zlib

from joserfc.jwk import ECKey, RSAKey

# Keys are made once per process: every OIDC contract signs with them, whatever test comes first.
RSA_KEY = RSAKey.generate_key(2048, parameters={"kid": "contract-rsa", "use": "sig"})
EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "contract-ec", "use": "sig"})
ROTATED_KEY = RSAKey.generate_key(2048, parameters={"kid": "contract-rotated", "use": "sig"})


def b64url(data):
    data = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token):
    """The claims of a compact JWT, read without checking anything."""
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def hs256_with_public_key(token, key=RSA_KEY):
    """``token``'s claims signed HS256 with ``key``'s public PEM as the secret (the algorithm-confusion attack)."""
    header = b64url(json.dumps({"alg": "HS256", "kid": key.kid}))
    body = b64url(json.dumps(claims_of(token)))
    signature = hmac.new(key.as_pem(private=False), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64url(signature)}"


def unsigned(token):
    """``token``'s claims with ``alg: none`` and no signature."""
    return b64url(json.dumps({"alg": "none"})) + "." + b64url(json.dumps(claims_of(token))) + "."


def tampered(token, **changes):
    """``token`` with its claims changed and its original signature kept."""
    header, _, signature = token.split(".")
    return f"{header}.{b64url(json.dumps({**claims_of(token), **changes}))}.{signature}"


def session_cookie_payload(cookie):
    """What a signed (not encrypted) Flask session cookie carries, decoded."""
    body = cookie.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return (zlib.decompress(raw) if cookie.startswith(".") else raw).decode(errors="replace")
