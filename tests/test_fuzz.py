"""Hypothesis property tests (issue 5, "Hardening": fuzzing).

- SEC-07: ``safe_next`` only ever accepts a path that keeps the browser on this site.
- SEC-01: no query string on a callback URL (ours or GeoPrism Registry's) gives a 5xx or a login, with
  or without the state of a real login transaction.
- SEC-48: whatever an identity server answers, the parsing code returns a well-formed value or raises a
  LoginFailure (ProviderError / ProviderUnavailable), never anything else (which would be a 500).

Each property keeps its example count small enough for the whole module to run in well under a minute
on two cores; Hypothesis is not derandomized, so every run explores new inputs.
"""
import gzip
import json
import re
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from unittest import mock
from urllib.parse import parse_qs, unquote, urlencode, urljoin, urlsplit

import pytest
import requests
import requests_mock
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from geologin.providers.oauth import ACCESS_TOKEN
from geologin import idp as instances
from geologin.extensions import db
from geologin.models import AuditEvent, User
from geologin.providers import (CallbackContext, HttpClient, Identity, InstanceView, LoginFailure, ProviderError,
                                ProviderUnavailable)
from geologin.providers.http import json_object
from geologin.login.redirects import safe_next
from geologin.validation import has_control
from tests.conftest import csrf_from

FIXTURE_SETTINGS = {"deadline": None, "print_blob": True,
                    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}

# Product bugs these properties found, all fixed; their triggers stay in the strategies. Should a new one
# turn up that cannot be fixed at once, name it in OPEN_BUGS to stop generating its trigger meanwhile.
# The minimal examples of the fixed ones:
#   content_length_unicode_digit: a "Content-Length: ²" header (byte 0xB2 on the wire): "²".isdigit() is
#       True, int("²") raises ValueError in providers/http.py _CappedAdapter.send.
#   undecodable_content_encoding: "Content-Encoding: gzip" with the body b"x": urllib3 DecodeError escapes
#       from response.raw.read() in _CappedAdapter.send.
#   body_read_failure: the server sends its headers, then stalls (urllib3 ReadTimeoutError) or closes the
#       connection early (urllib3 ProtocolError) while the body is read in _CappedAdapter.send.
#   deep_json: the body b"[" * 1000 + b"]" * 1000 (2 KB) makes json.loads raise RecursionError in
#       providers/http.py json_object.
#   non_latin1_access_token: a token response {"access_token": "\u20ac", "token_type": "bearer"}: the DHIS2
#       plugin sends "Authorization: Bearer \u20ac" to /api/me and http.client raises UnicodeEncodeError.
#   non_utf8_query_string: GET /auth/fuzz/callback?\x80 (a raw byte, not %80, as a PEP 3333 server such as
#       gunicorn passes it on): Werkzeug's request.args raises UnicodeDecodeError, so every page that reads
#       the query string (the callbacks, /login?next=...) answers 500.
OPEN_BUGS = set()


def fixed(bug):
    return bug not in OPEN_BUGS


# == SEC-07: the ``next`` validator =====================================================================
BASE = "https://login.example.org/"
HOME = ("https", "login.example.org")
# safe_next judges the value and every round of percent-decoding until it is stable (at most ten).
DECODE_ROUNDS = 10

PIECES = (
    "/", "//", "\\", "%2F", "%2f", "%5C", "%5c", "%252F", "%255C", "%25", "%", "%2", "%zz", "http:", "https:",
    "HTTPS:", "javascript:", "data:", "evil.example", "login.example.org", "@", ":", ".", "..", "%2e", "?", "#",
    "&", "=", ";", " ", "\t", "\n", "\r", "\x00", "\x0b", "\x1f", "\x7f", "%00", "%09", "%0A", "%0d", "%20",
    "%3A", "%40", "\u3002", "\uff0f", "\uff3c", "\u2215", "\u2044", "\u00a0", "\u200b", "\u202e", "\u00e9",
    "admin", "users", "?page=2", "#top",
)
url_ish = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=12).map("".join)
next_candidates = st.one_of(st.text(), url_ish, url_ish.map("/".__add__))

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_C0_AND_SPACE = "".join(map(chr, range(0x21)))


def browser_origin(value):
    """(scheme, host) a browser goes to when a page of BASE redirects to ``value``: the parts of WHATWG URL
    parsing that decide the origin, which urllib.parse does not follow ("///x" and "/\\x" are hosts)."""
    value = value.strip(_C0_AND_SPACE)
    value = re.sub(r"[\t\n\r]", "", value).replace("\\", "/")  # both ignored / a slash, for https URLs
    scheme = _SCHEME.match(value)
    if scheme:
        if scheme.group()[:-1].lower() != "https":
            return scheme.group()[:-1].lower(), None
        value = value[scheme.end():]  # same scheme as the base: relative unless followed by "//"
    if not value.startswith("//"):
        return HOME  # a path (dot segments never leave the host)
    authority = re.split(r"[/?#]", value.lstrip("/"), maxsplit=1)[0]
    host = authority.rpartition("@")[2].split(":")[0]
    return "https", unquote(host).lower().rstrip(".")


def urljoin_origin(value):
    parts = urlsplit(urljoin(BASE, value))
    return parts.scheme, parts.hostname


def decodings(value):
    """``value`` and what it becomes after each round of percent-decoding."""
    yield value
    for _ in range(DECODE_ROUNDS):
        value = unquote(value)
        yield value


@settings(max_examples=3000, deadline=None, print_blob=True)
@given(next_candidates)
def test_sec_07_next_validator_property(value):
    result = safe_next(value)
    if result is None:
        return
    assert result == value  # accepted as given, never rewritten
    for form in decodings(result):
        assert form.startswith("/") and form[1:2] not in ("/", "\\"), form
        assert urljoin_origin(form) == HOME, form
        assert browser_origin(form) == HOME, form


@pytest.mark.parametrize("path", [
    "/", "/admin/users", "/admin/users?page=2", "/account/password", "/admin/providers/moh-dhis2/edit#secret",
    "/a/b/c?x=1&y=2", "/search?q=caf%C3%A9", "/caf\u00e9", "/?next=/admin", "/" + "a" * 1999,
])
def test_sec_07_known_good_paths_are_accepted(path):
    assert safe_next(path) == path


@pytest.mark.parametrize("value", [
    None, b"/admin", 7, ["/"], "", "admin", "//evil.example", "/\\evil.example", "\\/evil.example",
    "/%2F/evil.example", "/%5Cevil.example", "/%252F%252Fevil.example", "https://evil.example/",
    "javascript:alert(1)", "/\t/evil.example", " /x", "/x\x00", "/" + "a" * 2000,
])
def test_sec_07_known_bad_values_are_refused(value):
    assert safe_next(value) is None


# == SEC-01: the callback's query parameters ============================================================
PUBLIC = "http://127.0.0.1:8080"
CALLBACK_PATHS = ("/auth/fuzz/callback", "/api/session/ologin", "/api/cgrsession/ologin", "/cgrsession/ologin")
PARAM_NAMES = ("state", "code", "error", "error_description", "error_uri", "iss", "session_state", "scope",
               "next", "")
huge_values = st.sampled_from([4097, 20_000, 200_000]).map(lambda n: "A" * n)
param_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["access_denied", "invalid_request", "", "\x00", "\x00" * 3, "https://evil.example",
                     PUBLIC, "http://127.0.0.1:9", "http://127.0.0.1:9/", "%00", "null", "[]", "\ufffd",
                     "\u202e", "\U0001f600"]),
    huge_values,
)
param_pairs = st.lists(st.tuples(st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=12)), param_values),
                       max_size=8)
RAW_PIECES = ("state=", "code=", "error=", "iss=", "error=access_denied", "&", "&&", "=", "==", "%", "%zz",
              "%00", "%FF", "%C3", "%C3%A9", "%ED%A0%80", "+", ";", "#", "?", "\x00", "\xff", "\xc3\xa9")


def _as_wsgi(raw):
    """A QUERY_STRING as a server hands it to WSGI: the request's bytes, as latin-1 code points."""
    if not fixed("non_utf8_query_string"):
        raw = raw.decode("utf-8", "replace").encode()
    return raw.decode("latin-1")


raw_queries = st.one_of(
    st.binary(max_size=200),
    st.lists(st.one_of(st.sampled_from(RAW_PIECES).map(lambda s: s.encode("latin-1")),
                       st.text(max_size=6).map(str.encode)), max_size=15).map(b"".join),
).map(_as_wsgi)


@pytest.fixture
def app(app_factory):
    # A login limit no fuzzing run reaches: the property is about parsing, not about rate limiting.
    return app_factory(ALLOW_INSECURE_HTTP=True, PUBLIC_URL=PUBLIC, LOGIN_RATE_LIMIT="1000000 per minute")


@pytest.fixture
def fuzz_instance(app, make_user):
    """A DHIS2 instance at an address nobody answers (legacy forced: no discovery), and a user allowed on it."""
    make_user("alice", password=None)
    with app.app_context():
        instance = instances.create_provider(
            "dhis2", slug="fuzz", label="Fuzz",
            settings={"base_url": "http://127.0.0.1:9/", "client_id": "geologin", "generation": "legacy"},
            secrets={"client_secret": "x" * 36}, actor="test")
        instances.allow([User.by_username("alice")], instance, actor="test")
        return instance.slug


def get_callback(client, path, query):
    """GET ``path`` with ``query``: ("pairs", [(k, v), ...]) urlencoded, or ("raw", QUERY_STRING)."""
    kind, value = query
    if kind == "pairs":
        return client.get(path, query_string=urlencode(value))
    return client.get(path, environ_overrides={"QUERY_STRING": value})


def _is_utf8(query):
    kind, value = query
    if kind == "raw":
        try:
            value.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _has_control(query):
    kind, value = query
    if kind == "pairs":
        return any(has_control(k) or has_control(v) for k, v in value)
    return has_control(unquote(value.encode("latin-1").decode("utf-8", "replace")))


def assert_back_at_login(response, query):
    assert response.status_code < 500
    if response.status_code == 400 and (not _is_utf8(query) or _has_control(query)):
        return  # a request line that is not UTF-8, or holds a control character, may be refused outright
    assert response.status_code == 302, response.status_code
    assert urlsplit(response.headers["Location"]).path == "/login", response.headers["Location"]


def assert_nobody_logged_in(client):
    response = client.get("/")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"


queries = st.one_of(st.tuples(st.just("pairs"), param_pairs), st.tuples(st.just("raw"), raw_queries))


@settings(max_examples=150, **FIXTURE_SETTINGS)
@given(query=queries)
def test_sec_01_any_callback_query_never_500_nor_login(app, client, fuzz_instance, query):
    for path in CALLBACK_PATHS:
        assert_back_at_login(get_callback(client, path, query), query)
    assert_nobody_logged_in(client)


def start_login(client):
    """Click "Log in with DHIS2" and return the state geologin sent to the server."""
    token = csrf_from(client.get("/login"))
    response = client.post("/auth/start", data={"csrf_token": token, "provider": "fuzz"})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    location = urlsplit(response.headers["Location"])
    assert location.netloc == "127.0.0.1:9"
    return parse_qs(location.query)["state"][0]


@settings(max_examples=150, **FIXTURE_SETTINGS)
@given(query=queries, code=st.one_of(st.none(), param_values),
       path=st.one_of(st.just(CALLBACK_PATHS[0]), st.sampled_from(CALLBACK_PATHS)))
def test_sec_01_callback_with_a_valid_state_never_500_nor_login(app, client, fuzz_instance, query, code, path):
    """The state of a real login comes first (the one geologin reads), whatever else is sent; the server is
    unreachable, so a code ends as provider_unavailable and error / iss / missing code are refused first."""
    state = start_login(client)
    first = [("state", state)] + ([("code", code)] if code is not None else [])
    kind, value = query
    if kind == "pairs":
        query = ("pairs", first + value)
    else:
        query = ("raw", urlencode(first) + "&" + value)
    assert_back_at_login(get_callback(client, path, query), query)
    assert_nobody_logged_in(client)
    with app.app_context():
        event(f"reason: {last_login_reason()}")


def last_login_reason():
    return db.session.scalars(select(AuditEvent.reason_code).where(AuditEvent.event_type == "login")
                              .order_by(AuditEvent.id.desc())).first()


# == SEC-48: parsing what an identity server answers ====================================================
SERVER = "https://dhis2.test/"
TOKEN_URL = SERVER + "uaa/oauth/token"
ME_URL = SERVER + "api/me"
MAX_BYTES = 16 * 1024  # room for JSON nested deeper than Hypothesis's raised recursion limit
CALLBACK = CallbackContext(params={"code": "the-code"}, redirect_uri="https://login.example.org/auth/x/callback",
                           nonce="n" * 43, code_verifier="v" * 64, data={"generation": "legacy"})

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# Header values as http.client hands them over: latin-1 text without line breaks.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
                      max_size=40)
# Access tokens in token responses: any text (exchange_code must refuse what cannot be a bearer token).
# The tokens handed directly to identity_from_me / identity_from are drawn from what exchange_code accepts.
tokens_strings = st.one_of(st.sampled_from(["2YotnFZFEjr1zCsicMWpAA", "a.b.c", "", " ", "\x00", "\u20ac"]),
                           st.text(max_size=40))
accepted_tokens = st.from_regex(ACCESS_TOKEN, fullmatch=True)


def shaped(required, optional, extra=True):
    """JSON objects with these keys (values from the given strategies), sometimes with unknown keys too."""
    base = st.fixed_dictionaries(required, optional=optional)
    if not extra:
        return base
    return st.tuples(base, st.dictionaries(st.text(max_size=10), json_values, max_size=3)).map(
        lambda pair: {**pair[1], **pair[0]})


token_objects = shaped({}, {
    "access_token": st.one_of(tokens_strings, json_values),
    "token_type": st.one_of(st.sampled_from(["bearer", "Bearer", "BEARER", "mac", "", "bearer "]), json_values),
    "expires_in": st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=5), st.none()),
    "refresh_token": json_values, "scope": json_values, "id_token": json_values,
})
# Mostly usable token responses, so that complete_login goes on to /api/me.
usable_token_objects = shaped({"access_token": accepted_tokens, "token_type": st.just("bearer")},
                              {"expires_in": st.integers(0, 10**6)})
text_or_json = st.one_of(st.text(max_size=20), json_values)
wild_me_objects = shaped({}, {
    "id": text_or_json, "username": text_or_json, "firstName": text_or_json, "surname": text_or_json,
    "email": text_or_json,
    "userCredentials": st.one_of(shaped({}, {"username": text_or_json}), json_values),
})
# Mostly DHIS2-like, so that the properties also reach the end of the parsing (and the Identity): the
# username at the top (2.38+) or only in userCredentials (up to 2.37).
names = st.text(min_size=1, max_size=20)
usable_me_objects = st.one_of(
    shaped({"id": names, "username": names}, {"firstName": text_or_json, "surname": text_or_json,
                                              "email": text_or_json}),
    shaped({"id": names, "userCredentials": shaped({"username": names}, {})}, {"firstName": text_or_json}),
)
me_objects = st.one_of(usable_me_objects, wild_me_objects)
claim_objects = shaped({"sub": names},
                       {"username": text_or_json, "email": text_or_json, "name": text_or_json})


@dataclass
class Answer:
    """One HTTP answer of the fake server. ``failure``: raised by the socket after the body's bytes."""

    status: int
    headers: dict
    body: bytes  # as sent, maybe compressed
    decoded: bytes | None = None  # the body once its Content-Encoding is undone (None: the same)
    failure: type | None = None

    def __post_init__(self):
        if self.decoded is None:
            self.decoded = self.body

    def mock_kwargs(self):
        return {"status_code": self.status, "headers": self.headers,
                "body": lambda request, context: _Socket(self.body, self.failure)}


class _Socket:
    """The body as the connection delivers it: its bytes, then EOF or (``failure``) a network error."""

    def __init__(self, data, failure=None):
        self.data, self.failure, self.closed = data, failure, False

    def read(self, amount=None, *args):
        if self.closed:
            return b""
        if not self.data:
            if self.failure is not None:
                raise self.failure("fuzz: the connection broke while the body was read")
            return b""
        amount = len(self.data) if amount is None or amount < 0 else amount
        chunk, self.data = self.data[:amount], self.data[amount:]
        return chunk

    def close(self):
        self.closed = True


JSON_TYPES = ("application/json", "application/json;charset=UTF-8", "application/json; charset=utf-16",
              "application/problem+json", "text/json", "APPLICATION/JSON")
OTHER_TYPES = ("text/html", "text/html; charset=ISO-8859-1", "text/plain", "application/octet-stream",
               "application/xml", "json", "")


def _json_bytes(draw, value):
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1"]))
    return text.encode(encoding, "replace")


BODY_KINDS = ("any-json", "binary", "broken-utf8", "truncated", "big", "deep", "numbers")


@st.composite
def odd_bodies(draw, values):
    """Bytes that are JSON of something else, not quite JSON, or too much of it."""
    kind = draw(st.sampled_from(BODY_KINDS + (("deeper",) if fixed("deep_json") else ())))
    if kind == "any-json":
        return _json_bytes(draw, draw(json_values))
    if kind == "binary":
        return draw(st.binary(max_size=300))
    if kind == "broken-utf8":
        body = json.dumps(draw(values), ensure_ascii=False).encode()
        at = draw(st.integers(0, len(body)))
        return body[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xfe\xff"])) + body[at:]
    if kind == "truncated":
        body = json.dumps(draw(values)).encode()
        return body[:draw(st.integers(0, max(0, len(body) - 1)))]
    if kind == "big":  # a valid object that only the size cap can refuse
        body = json.dumps(draw(values)).encode()
        return b" " * draw(st.integers(MAX_BYTES - len(body) - 5, 3 * MAX_BYTES)) + body
    if kind == "deep":
        depth = draw(st.integers(1, 300))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        return opener * depth + b"1" + closer * depth
    if kind == "deeper":  # 1,000 levels break json.loads; Hypothesis adds ~2,000 to the recursion limit
        depth = draw(st.integers(4000, MAX_BYTES // 2))
        return b"[" * depth + b"]" * depth
    return draw(st.sampled_from([b'{"a": ' + b"1" * 5000 + b"}", b'{"a": NaN, "b": -Infinity}',
                                 b'{"a": 1e999}', b'{"a": 1, "a": {}}', b"\xef\xbb\xbf{}", b"{}" * 3]))


ODDITIES = ("status", "content-type", "body", "content-encoding", "content-length", "connection")


@st.composite
def answers(draw, values):
    """An answer carrying JSON of ``values``, with a few odd features (none, sometimes): every input class
    is reached without needing several unlikely draws at once."""
    odd = draw(st.sets(st.sampled_from(ODDITIES), max_size=3))
    status = 200
    if "status" in odd:
        status = draw(st.one_of(st.sampled_from([201, 204, 302, 400, 401, 403, 404, 500, 503]),
                                st.integers(100, 599)))
    body = decoded = draw(odd_bodies(values)) if "body" in odd else _json_bytes(draw, draw(values))
    headers = {"Content-Type": draw(st.sampled_from(JSON_TYPES))}
    if "content-type" in odd:
        content_type = draw(st.one_of(st.sampled_from(OTHER_TYPES), st.none(), header_text))
        if content_type is None:
            del headers["Content-Type"]
        else:
            headers["Content-Type"] = content_type
    if "content-encoding" in odd:
        encodings = ["identity", "gzip", "deflate", "x-unknown"]
        if fixed("undecodable_content_encoding"):
            encodings += ["gzip-garbage", "deflate-garbage"]
        encoding = draw(st.sampled_from(encodings))
        body = {"gzip": gzip.compress, "deflate": zlib.compress}.get(encoding, bytes)(body)
        headers["Content-Encoding"] = encoding.removesuffix("-garbage")
    length = draw(st.sampled_from(["absent", "exact"]))
    if "content-length" in odd:
        length = draw(st.sampled_from(["smaller", "bigger", "huge", "junk"]
                                      + (["unicode-digit"] if fixed("content_length_unicode_digit") else [])))
    declared = {"exact": str(len(body)), "smaller": str(len(body) // 2), "bigger": str(len(body) + 10),
                "huge": "9" * 20, "junk": draw(st.sampled_from(["abc", "-1", " 12", "1e3", "", "12, 12"])),
                "unicode-digit": draw(st.sampled_from(["\u00b2", "\u00b9\u00b2"]))}.get(length)
    if declared is not None:
        headers["Content-Length"] = declared
    failure = None
    if "connection" in odd and fixed("body_read_failure"):
        failure = draw(st.sampled_from([TimeoutError, ConnectionResetError]))
    return Answer(status, headers, body, decoded, failure)


@contextmanager
def serving(routes):
    """Serve ``routes`` ({url: Answer}) to the product's HttpClient.

    requests-mock's Adapter takes the place of the network *under* the product's size-capping adapter
    (HTTPAdapter.send, which _CappedAdapter calls): requests_mock.Mocker would replace the whole adapter,
    and with it the cap and the body read this property is about."""
    transport = requests_mock.Adapter()
    for url, answer in routes.items():
        transport.register_uri(requests_mock.ANY, url, **answer.mock_kwargs())

    def send(adapter, request, **kwargs):
        for value in request.headers.values():
            if isinstance(value, str):
                value.encode("latin-1")  # what http.client does with each header before sending it
        return transport.send(request, **kwargs)

    with mock.patch.object(requests.adapters.HTTPAdapter, "send", send):
        yield transport


def dhis2_provider(app):
    cls = app.extensions["geologin.plugins"].get("dhis2")
    view = InstanceView(slug="x", label="X", secret_reader=lambda name: "s" * 36,
                        settings={"base_url": SERVER, "client_id": "geologin", "generation": "legacy"})
    client = HttpClient(allowed_hosts={"dhis2.test"}, max_bytes=MAX_BYTES, read_timeout=2)
    return cls(view, http=client, default_redirect_uri="https://login.example.org/auth/x/callback")


def check_identity(identity):
    assert isinstance(identity, Identity)
    assert isinstance(identity.username, str) and identity.username
    assert isinstance(identity.subject, str) and identity.subject
    assert identity.subject_scheme in ("dhis2-uid", "dhis2-sub")
    assert identity.email is None or (isinstance(identity.email, str) and identity.email)
    assert identity.display_name is None or isinstance(identity.display_name, str)


def check_tokens(tokens):
    assert isinstance(tokens, dict)
    assert isinstance(tokens["access_token"], str) and tokens["access_token"]
    assert tokens["token_type"].lower() == "bearer"


def fetch_json_object(provider):
    return json_object(provider.http.get(SERVER + "anything"), "fuzz")


def run_target(app, target, data):
    """Draw the answers for ``target``, call it, and return (its result or LoginFailure, the routes)."""
    provider = dhis2_provider(app)
    if target == "json_object":
        routes = {SERVER + "anything": data.draw(answers(st.one_of(token_objects, me_objects, json_values)))}
        call = partial(fetch_json_object, provider)
    elif target == "exchange_code":
        routes = {TOKEN_URL: data.draw(answers(st.one_of(usable_token_objects, token_objects)))}
        call = partial(provider.exchange_code, "the-code", CALLBACK)
    elif target == "identity_from_me":
        routes = {ME_URL: data.draw(answers(me_objects))}
        token = data.draw(accepted_tokens)
        call = partial(provider.identity_from_me, token)
    elif target == "identity_from":
        claims = data.draw(st.one_of(st.none(), claim_objects))
        routes = {ME_URL: data.draw(answers(me_objects))}
        tokens = {"access_token": data.draw(accepted_tokens), "token_type": "bearer"}
        call = partial(provider.identity_from, tokens, claims)
    else:  # complete_login: the whole legacy chain, token response then /api/me
        routes = {TOKEN_URL: data.draw(answers(st.one_of(usable_token_objects, token_objects))),
                  ME_URL: data.draw(answers(me_objects))}
        call = partial(provider.complete_login, CALLBACK)
    with serving(routes):
        try:
            return call(), routes
        except LoginFailure as failure:
            assert isinstance(failure, (ProviderError, ProviderUnavailable)), repr(failure)
            assert isinstance(failure.detail, str) and failure.reason in ("provider_error", "provider_unavailable")
            return failure, routes


@pytest.mark.parametrize("target", ["json_object", "exchange_code", "identity_from_me", "identity_from",
                                    "complete_login"])
@settings(max_examples=300, **FIXTURE_SETTINGS)
@given(data=st.data())
def test_sec_48_provider_answer_parsing_property(app, target, data):
    with app.test_request_context():  # as the core builds and calls providers
        result, routes = run_target(app, target, data)
    event(f"{type(result).__name__}: {result.detail[:40]}" if isinstance(result, LoginFailure) else "value")
    if isinstance(result, LoginFailure):
        return
    if target == "json_object":
        answer = routes[SERVER + "anything"]
        assert answer.status < 500 and len(answer.decoded) <= MAX_BYTES
        assert answer.headers["Content-Type"].split(";")[0].strip().endswith("json")
        assert isinstance(result, dict)
        assert json.dumps(result, sort_keys=True) == json.dumps(json.loads(answer.decoded), sort_keys=True)
    elif target == "exchange_code":
        check_tokens(result)
    else:
        check_identity(result)


def test_sec_48_a_plain_json_object_is_returned_as_sent(app):
    """The property's other side: a well-formed answer is not refused (the properties would pass vacuously
    if everything became a ProviderError)."""
    provider = dhis2_provider(app)
    me = {"id": "xE7jOejl9FI", "username": "alice", "firstName": "Alice", "surname": "A", "email": "a@x.org"}
    body = json.dumps(me).encode()
    answer = Answer(200, {"Content-Type": "application/json;charset=UTF-8", "Content-Length": str(len(body))}, body)
    token = json.dumps({"access_token": "2YotnFZFEjr1zCsicMWpAA", "token_type": "bearer"}).encode()
    compressed = Answer(200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, gzip.compress(token))
    with app.test_request_context(), serving({ME_URL: answer, TOKEN_URL: compressed}):
        assert json_object(provider.http.get(ME_URL), "me") == me
        identity = provider.complete_login(CALLBACK)
    assert (identity.subject, identity.username, identity.display_name) == ("xE7jOejl9FI", "alice", "Alice A")
