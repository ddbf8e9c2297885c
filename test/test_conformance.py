"""Issue 11: the simulator's answers and the pipe's requests, checked against Bitbucket's OpenAPI
document (../shared/bitbucket-openapi/swagger.v3.json) by openapi-core, a validator nobody here wrote.

(A) Every operation the simulator serves answers, for a representative request (an API token with
    every scope) and for its error answers (401, 403, 404, 410, 400), a body the document's
    response schema accepts.
(B) Every request the pipe makes across end-to-end runs (API token, access token, OAuth consumer,
    CHECK_RESTORE, REPOSITORIES, Code Insights, a 250-repository workspace, an adversarial
    simulator) names a declared path and method, only query parameters the operation declares
    (or Bitbucket's global ones), values the document accepts, and a pagelen within the
    endpoint's cap.

The document is not always right about Bitbucket: KNOWN_INACCURACIES below lists each place where
it is not, with the evidence. An entry excuses one kind of deviation only; anything else fails.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from jsonschema.exceptions import ValidationError
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

from test.conftest import (
    ALL_READ,
    ALL_WRITE,
    CLASSIC_READ,
    OPENAPI,
    access_token,
    api_token,
    oauth,
    shared_or_skip,
    workspace,
)
from test.simulator import Credential, Repository, Simulator, Workspace
from test.simulator.api import Route
from test.simulator.model import RecordedRequest
from test.simulator.scopes import SCOPE_TABLE

SERVER = "https://api.bitbucket.org"  # the document's server is https://api.bitbucket.org/2.0

# Query parameters Bitbucket takes on every collection (developer.atlassian.com, "Pagination" and
# "Partial responses"), which the document declares on almost no operation: not an error.
GLOBAL_QUERY = frozenset({"fields", "pagelen", "page"})
# pagelen caps: pull request lists refuse more than 50 (400 "Invalid pagelen", research A11);
# every other list takes at most 100.
PULL_REQUEST_TEMPLATE = re.compile(r"/pullrequests(/|$)")
PULL_REQUEST_CAP, LIST_CAP = 50, 100


# --- the document and the validator ------------------------------------------------------------


@cache
def document() -> dict[str, Any]:
    return json.loads(shared_or_skip(OPENAPI).read_text())


@cache
def validator() -> OpenAPI:
    return OpenAPI.from_dict(document())


@cache
def templates() -> list[tuple[re.Pattern[str], str]]:
    """Every path template of the document as a regex; literal segments win over parameters."""
    found = []
    for template in document()["paths"]:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        found.append((re.compile(f"^{pattern}/?$"), template))
    return sorted(found, key=lambda item: (item[1].count("{"), -len(item[1])))


def template_of(path: str) -> str | None:
    """The document's template for a concrete path without /2.0, e.g. /repositories/{workspace}."""
    return next((t for regex, t in templates() if regex.match(path)), None)


def operation(method: str, template: str) -> dict[str, Any]:
    return document()["paths"][template][method.lower()]


def declared_query(method: str, template: str) -> set[str]:
    item = document()["paths"][template]
    params = item.get("parameters", []) + operation(method, template).get("parameters", [])
    return {p["name"] for p in params if p.get("in") == "query"}


# --- the document's known inaccuracies (the allow-list) -----------------------------------------


@dataclass(frozen=True)
class Inaccuracy:
    why: str
    excuses: Callable[[ValidationError], bool]
    in_requests: bool = False  # True: a request body's inaccuracy, never excused in an answer


def _last(error: ValidationError) -> Any:
    return error.absolute_path[-1] if error.absolute_path else None


def _unexpected(error: ValidationError) -> set[str]:
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return set()
    return set(error.instance) - set((error.schema or {}).get("properties", {}))


# Properties real Bitbucket answers with null though the document never says `nullable`; each one
# is null in a real body (../shared/fixtures/bitbucket-cloud/go-scm: prs.json merge_commit and
# closed_by, hooks.json source, user.json website and location).
NULL_IN_REAL_BODIES = frozenset({"merge_commit", "closed_by", "source", "website", "location"})

KNOWN_INACCURACIES = (
    Inaccuracy(
        "null where the document says object or string (real bodies: go-scm prs.json, hooks.json, user.json)",
        lambda e: e.instance is None and _last(e) in NULL_IN_REAL_BODIES,
    ),
    Inaccuracy(
        "links objects carry more links than the document lists: a repository's branches, tags and "
        "source, a project's self (go-scm repos.json)",
        lambda e: _last(e) == "links" and bool(_unexpected(e)),
    ),
    Inaccuracy(
        "`type` on a pull request's summary ('rendered') and on the commit of its source and "
        "destination, where the document allows no extra property (go-scm prs.json)",
        lambda e: _unexpected(e) == {"type"} and _last(e) in ("summary", "commit"),
    ),
    Inaccuracy(
        "a scope 403's error.detail is an object {required, granted} (backstage#22383, "
        "gildas/bitbucket-cli#56; bitbucket-cloud.md section 3), the document says string",
        lambda e: list(e.absolute_path) == ["error", "detail"] and isinstance(e.instance, dict),
    ),
    Inaccuracy(
        "every schema built on `object` requires `type`, also in request bodies, where Bitbucket's "
        "own Code Insights examples send none",
        lambda e: e.validator == "required" and e.message == "'type' is a required property",
        in_requests=True,
    ),
    Inaccuracy(
        "report_data.value is typed `object`, though the same schema's `type` says BOOLEAN, DATE, "
        "NUMBER, PERCENTAGE or TEXT (scalars)",
        lambda e: e.validator == "type" and _last(e) == "value" and not isinstance(e.instance, dict | list),
        in_requests=True,
    ),
)
# Status codes Bitbucket answers on any operation (authentication, scopes, a missing object, a
# removal, a refused pagelen or query) though the document declares each only on some: the body
# must still be the document's `error` object.
UNDECLARED_ERROR_STATUSES = frozenset({400, 401, 403, 404, 410})


def _schema_errors(exc: BaseException) -> list[ValidationError] | None:
    seen: BaseException | None = exc
    while seen is not None:
        errors = getattr(seen, "schema_errors", None)
        if errors is not None:
            return list(errors)
        seen = seen.__cause__ or seen.__context__
    return None


def _unexcused(errors: list[ValidationError], request: bool = False, trimmed: bool = False) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:160]}"
        for e in errors
        if not any(known.excuses(e) and known.in_requests == request for known in KNOWN_INACCURACIES)
        # `fields=` trims objects to the paths asked for, required ones too: the document's
        # schemas describe untrimmed objects.
        and not (trimmed and e.validator == "required")
    ]


@cache
def error_validator() -> OAS30Validator:
    return OAS30Validator(document()["components"]["schemas"]["error"])


def answer_problems(
    method: str, path: str, status: int, body: bytes, content_type: str, trimmed: bool = False
) -> list[str]:
    """What is wrong with one answer by the document (excused inaccuracies left out); trimmed:
    the request asked for `fields=`."""
    request = MockRequest(SERVER, method.lower(), path)
    response = MockResponse(body, status_code=status, content_type=content_type)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unsupported scheme type": the document's basic/api_key schemes
        try:
            validator().validate_response(request, response)
        except ResponseNotFound:
            if status not in UNDECLARED_ERROR_STATUSES:
                return [f"status {status} is not declared"]
            return _unexcused(list(error_validator().iter_errors(json.loads(body))))
        except OpenAPIError as exc:
            errors = _schema_errors(exc)
            return [f"{type(exc).__name__}: {exc}"[:300]] if errors is None else _unexcused(errors, trimmed=trimmed)
    return []


def request_problems(record: RecordedRequest) -> list[str]:
    """What is wrong with one request by the document; [] for requests outside the REST API."""
    if not record.path.startswith("/2.0/"):
        return []  # the OAuth token endpoint and git over HTTPS are not in the document
    path = record.path.removeprefix("/2.0")
    query = parse_qsl(record.query, keep_blank_values=True)
    where = f"{record.method} {record.path}?{record.query}"
    problems = []
    template = template_of(path)
    if template is None or record.method.lower() not in document()["paths"][template]:
        return [f"{where}: no such operation in the document"]
    op = operation(record.method, template)
    if op.get("deprecated"):
        problems.append(f"{where}: the document marks {record.method} {template} deprecated (removed)")
    allowed = declared_query(record.method, template) | (GLOBAL_QUERY if record.method == "GET" else set())
    problems += [f"{where}: query parameter {name!r} is not declared" for name, _ in query if name not in allowed]
    cap = PULL_REQUEST_CAP if PULL_REQUEST_TEMPLATE.search(template) else LIST_CAP
    for name, value in query:
        if name in ("pagelen", "page") and not (value.isdigit() and int(value) >= 1):
            problems.append(f"{where}: {name}={value!r} is not a positive integer")
        elif name == "pagelen" and int(value) > cap:
            problems.append(f"{where}: pagelen={value} exceeds the cap of {cap} for {template}")
    if record.status == 400:
        problems.append(f"{where}: the simulator refused it (400)")
    content_type = next((v for k, v in record.headers.items() if k.lower() == "content-type"), "application/json")
    request = MockRequest(
        SERVER,
        record.method.lower(),
        record.path,
        args=dict(query),
        data=record.body or None,
        content_type=content_type,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            validator().validate_request(request)
        except (PathNotFound, OperationNotFound) as exc:
            problems.append(f"{where}: {exc}")
        except OpenAPIError as exc:
            errors = _schema_errors(exc)
            if errors is None:
                problems.append(f"{where}: {type(exc).__name__}: {exc}"[:300])
            else:
                problems += [f"{where}: {p}" for p in _unexcused(errors, request=True)]
    return problems


# --- (A) the simulator's answers ---------------------------------------------------------------

EMAIL = "conformance@acme.example"
EVERYTHING_SECRET = "ATATT3xCONFORMANCEeveryScope000000000000001"
ALL_API_SCOPES = sorted({s for req in SCOPE_TABLE.values() for s in req.api_token})
ROUTES: list[Route] = Simulator().api.routes
REPORT = {"title": "Backup readiness", "report_type": "SECURITY", "result": "PASSED", "details": "ok"}


def lacking_secret(route: Route) -> str:
    return f"ATATT3xCONFORMANCElacks{ROUTES.index(route):03d}"


def conformance_credentials() -> list[Credential]:
    everything = Credential(
        "api_token", EVERYTHING_SECRET, ALL_API_SCOPES, email=EMAIL, username="conf", permissions={"readonly": "read"}
    )
    # One token per operation holding every scope but the operation's own: its 403 is a scope 403.
    lacking = [
        Credential(
            "api_token",
            lacking_secret(route),
            [s for s in ALL_API_SCOPES if s not in SCOPE_TABLE[(route.method, route.template)].api_token],
            email=EMAIL,
            username="conf",
        )
        for route in ROUTES
    ]
    return [everything, *lacking]


@pytest.fixture(scope="module")
def answers_sim() -> Iterator[Simulator]:
    shared_or_skip(OPENAPI)
    acme = Workspace("acme", repositories=[Repository("alpha"), Repository("readonly")])
    with Simulator([acme], conformance_credentials()) as sim:
        yield sim


def fill(template: str, workspace_slug: str = "acme", repo: str = "alpha") -> str:
    return template.format(workspace=workspace_slug, repo_slug=repo, commit="0f3c9a1b2d4e", reportId="readiness")


def call(sim: Simulator, route: Route, path: str, secret: str, **params: str) -> httpx.Response:
    body = REPORT if route.method == "PUT" else None
    return httpx.request(
        route.method, sim.api_url + path, auth=httpx.BasicAuth(EMAIL, secret), json=body, params=params or None
    )


def expected_ok(route: Route) -> int:
    removed = route.handler.__name__ in ("gone", "retired")
    return 410 if removed else 200


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.template}" for r in ROUTES])
def test_simulator_answers_match_the_document(answers_sim: Simulator, route: Route) -> None:
    ok = expected_ok(route)
    gone = ok == 410  # a removed endpoint is gone for every authenticated caller and every object
    cases: list[tuple[str, str, str, int]] = [
        ("every scope", fill(route.template), EVERYTHING_SECRET, ok),
        ("unknown token", fill(route.template), "ATATT3xCONFORMANCEunknown", 401),
        ("scope missing", fill(route.template), lacking_secret(route), 410 if gone else 403),
    ]
    if "{repo_slug}" in route.template:
        cases.append(("no such repository", fill(route.template, repo="nope"), EVERYTHING_SECRET, 410 if gone else 404))
    elif "{workspace}" in route.template:
        missing = fill(route.template, workspace_slug="nope")
        cases.append(("no such workspace", missing, EVERYTHING_SECRET, 410 if gone else 404))
    problems = []
    for what, path, secret, status in cases:
        resp = call(answers_sim, route, path, secret)
        if resp.status_code != status:
            problems.append(f"{what}: status {resp.status_code}, expected {status}")
        content_type = resp.headers.get("content-type", "")
        problems += [
            f"{what} ({resp.status_code}): {p}"
            for p in answer_problems(route.method, "/2.0" + path, resp.status_code, resp.content, content_type)
        ]
    assert problems == []


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/repositories/acme/readonly/pipelines_config", {}, 403),  # admin needed on the repository
        ("/repositories/acme/readonly/hooks", {}, 403),
        ("/repositories/acme/alpha/pullrequests", {"pagelen": "100"}, 400),  # "Invalid pagelen"
        ("/user/workspaces/acme/permissions/repositories", {"q": "nope=1"}, 400),  # a bad BBQL field
        ("/repositories/acme", {"q": 'full_name="acme/alpha"', "role": "admin", "pagelen": "1"}, 200),
        ("/user/workspaces/acme/permissions/repositories", {"q": 'permission>"read"'}, 200),
        ("/repositories/acme", {"fields": "size,values.slug"}, 200),
    ],
)
def test_other_answers_match_the_document(answers_sim: Simulator, path: str, params: dict[str, str], status: int):
    resp = httpx.get(answers_sim.api_url + path, auth=httpx.BasicAuth(EMAIL, EVERYTHING_SECRET), params=params)
    assert resp.status_code == status
    problems = answer_problems(
        "GET", "/2.0" + path, status, resp.content, resp.headers["content-type"], "fields" in params
    )
    assert problems == []


# The validator and the allow-list must still catch what is wrong: each of these answers breaks
# the document in a way no inaccuracy excuses.
@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/repositories/acme", 200, {"values": "not a list"}),
        ("/repositories/acme/alpha/pullrequests", 200, {"values": [{"type": "pullrequest", "state": "WEIRD"}]}),
        ("/user/workspaces", 200, {"values": [{"type": "workspace_access", "administrator": "yes"}]}),
        ("/repositories/acme/alpha", 404, {"type": "error", "error": {"msg": "no message key"}}),
        ("/repositories/acme/alpha/pullrequests", 200, {"values": [{"type": "pullrequest", "title": None}]}),
        ("/user", 302, {"type": "error", "error": {"message": "Found"}}),
        ("/repositories/acme/alpha/override-settings", 200, {"override_settings": {}}),  # no type
    ],
)
def test_the_validator_catches_a_wrong_answer(path: str, status: int, body: dict[str, Any]) -> None:
    shared_or_skip(OPENAPI)
    assert answer_problems("GET", "/2.0" + path, status, json.dumps(body).encode(), "application/json") != []


# --- (B) the pipe's requests -------------------------------------------------------------------

PIPELINES = {
    "BITBUCKET_BUILD_NUMBER": "7",
    "BITBUCKET_COMMIT": "0123456789abcdef0123456789abcdef01234567",
    "BITBUCKET_REPO_SLUG": "repo-0000",
    "BITBUCKET_WORKSPACE": "acme",
}
NO_PULLS = [s for s in ALL_READ if s != "read:pullrequest:bitbucket"]
CLASSIC_WRITE = ["repository:write", "pullrequest:write", "pipeline:write", "pipeline:variable", "webhook", "project"]


@dataclass
class Scenario:
    credential: Callable[[], Credential]
    variables: dict[str, str]
    switches: dict[str, Any]
    workspace: Callable[[], Workspace] = workspace


SCENARIOS = {
    "api-token": Scenario(lambda: api_token(), {}, {}),
    "api-token-scope-headers": Scenario(lambda: api_token(scope_headers=True), {}, {}),
    "api-token-restore": Scenario(lambda: api_token(ALL_READ + ALL_WRITE), {"CHECK_RESTORE": "true"}, {}),
    "api-token-repositories": Scenario(lambda: api_token(), {"REPOSITORIES": "repo-0000,acme/repo-0001"}, {}),
    "api-token-no-pulls-code-insights": Scenario(
        lambda: api_token(NO_PULLS), {"CODE_INSIGHTS": "true", "CODE_INSIGHTS_PROXY": "{proxy}", **PIPELINES}, {}
    ),
    "api-token-250-repositories": Scenario(lambda: api_token(), {}, {}, lambda: workspace(n=250)),
    "access-token": Scenario(
        lambda: access_token(["repository", "repository:admin", "pullrequest", "pipeline", "project", "webhook"]),
        {},
        {},
    ),
    "access-token-restore": Scenario(
        lambda: access_token(["repository:admin", "pullrequest:write", "pipeline:variable", "project"]),
        {"CHECK_RESTORE": "true"},
        {},
    ),
    "oauth": Scenario(lambda: oauth(), {}, {}),
    "oauth-restore": Scenario(lambda: oauth(CLASSIC_READ + CLASSIC_WRITE), {"CHECK_RESTORE": "true"}, {}),
    # Bitbucket at its least helpful: the pipe must still ask only what the document declares.
    "adversary": Scenario(
        lambda: api_token(NO_PULLS, permissions={"repo-0001": "read"}, default_permission="read"),
        {"CHECK_RESTORE": "true"},
        {
            "permissions_list": "explicit",
            "page_size": False,
            "fields": False,
            "granted_in_403": "missing",
            "scope_headers": False,
            "webhooks_need_admin": False,
        },
        lambda: workspace(n=120),
    ),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_request_of_the_pipe_is_declared_by_the_document(start, run_pipe, name: str) -> None:
    shared_or_skip(OPENAPI)
    scenario = SCENARIOS[name]
    cred = scenario.credential()
    sim = start([cred], workspaces=[scenario.workspace()], **scenario.switches)
    variables = {k: v.replace("{proxy}", sim.base_url) for k, v in scenario.variables.items()}
    run = run_pipe(sim, cred, **variables)
    assert run.code in (0, 1), run.output  # a verdict, not an error or an inconclusive run
    api_requests = [r for r in sim.requests if r.path.startswith("/2.0/")]
    assert len(api_requests) >= 10, "the run made too few API requests to say anything"
    problems = [p for record in sim.requests for p in request_problems(record)]
    assert problems == []


# The request check must fail on what the pipe must never do.
@pytest.mark.parametrize(
    ("method", "path", "query", "status"),
    [
        ("GET", "/2.0/repositories/acme/r/pullrequests", "pagelen=100", 200),  # PR lists take at most 50
        ("GET", "/2.0/repositories/acme", "pagelen=500", 200),  # other lists at most 100
        ("GET", "/2.0/repositories/acme/r/nothing-here", "", 200),  # no such path
        ("DELETE", "/2.0/user", "", 200),  # no such method
        ("GET", "/2.0/repositories/acme", "role=boss", 200),  # not a declared value
        ("GET", "/2.0/user/workspaces/acme/permission", "q=x", 200),  # q is not declared there
        ("GET", "/2.0/repositories", "", 410),  # removed (deprecated in the document)
        ("GET", "/2.0/repositories/acme/r/pullrequests", "pagelen=50", 400),  # the simulator refused it
        ("PUT", "/2.0/repositories/acme/r/commit/abc/reports/x", "", 200),  # a body the schema refuses
    ],
)
def test_the_request_check_catches_a_wrong_request(method: str, path: str, query: str, status: int) -> None:
    shared_or_skip(OPENAPI)
    body = json.dumps({"title": 5, "report_type": "NOPE"}).encode() if method == "PUT" else b""
    record = RecordedRequest(
        method, path, query, status, "api_token", "Basic", body, {"Content-Type": "application/json"}
    )
    assert request_problems(record) != []


def test_the_request_check_accepts_what_bitbucket_takes() -> None:
    shared_or_skip(OPENAPI)
    for method, path, query in [
        ("GET", "/2.0/repositories/acme/r/pullrequests", "pagelen=50&state=MERGED&fields=values.id"),
        ("GET", "/2.0/repositories/acme", "role=admin&q=full_name%3D%22acme%2Fr%22&pagelen=100&page=3"),
        ("GET", "/2.0/user/workspaces/acme/permissions/repositories", "q=permission%3E%22read%22&sort=repository.name"),
        ("GET", "/2.0/user/workspaces", "administrator=true"),
    ]:
        record = RecordedRequest(method, path, query, 200, "api_token", "Basic", b"", {})
        assert request_problems(record) == []
