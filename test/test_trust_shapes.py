"""Issue 9, point 4: every shape handled. A hostile Bitbucket (the simulator with answers
rewritten) sends a wrong type or value in one field of one answer; the pipe ends `inconclusive`
(exit 3) naming the endpoint and what was wrong, never a traceback, never "Internal error",
never `ready` and never `missing` on a guess. Display text (the owner's name) and unknown
scope names are accepted and shown instead.

Every case starts from a run that is READY without the change (asserted once below), so any
other verdict comes from the one field rewritten."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from pipe import shapes
from pipe.survey.grants import ScopeEvidence
from test.conftest import ALL_READ, CLASSIC_READ, access_token, api_token, oauth, workspace
from test.hostile import raw, rewrite, tamper
from test.simulator.server import Response

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schema" / "report.schema.json").read_text())
TIMEOUT = "20"
USER = r"^/2\.0/user$"
REPOS = r"^/2\.0/repositories/acme$"
PERMS = r"^/2\.0/user/workspaces/acme/permissions/repositories$"
PULLS = r"^/2\.0/repositories/acme/[^/]+/pullrequests$"
RUNNERS = r"/pipelines-config/runners$"
TOKEN = r"^/site/oauth2/access_token$"
UNKNOWN_RESTORE = ("pull-requests", "projects", "snippets")
FULL_ACCESS = ["repository", "repository:admin", "pullrequest", "pipeline", "project"]
CREDENTIALS = {
    "api_token": api_token,
    "oauth": oauth,
    "oauth-no-headers": lambda: oauth(scope_headers=False),
    "access_token": lambda: access_token(FULL_ACCESS),
}

Change = Callable[[Any, Any], Any]


def put(path: str, value: Any) -> Change:
    """A rewrite setting one field: "values.0.permission", "error.detail.granted"; '-' drops it."""

    def change(body: Any, req: Any) -> Any:
        *parents, last = path.split(".")
        node = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        elif value == "-":
            node.pop(last, None)
        else:
            node[last] = value
        return body

    return change


def insert(path: str, index: int, value: Any) -> Change:
    def change(body: Any, req: Any) -> Any:
        body[path].insert(index, value)
        return body

    return change


def granted_as(key: str, value: Any = None) -> Change:
    """The token response naming its scopes under `key` only (`scope` since 2026-05-04, `scopes`
    before), as `value`, or as the string the simulator sent."""

    def change(body: Any, req: Any) -> Any:
        sent = body.get("scope") or body.get("scopes")
        kept = {k: v for k, v in body.items() if k not in ("scope", "scopes")}
        return {**kept, key: sent if value is None else value}

    return change


def whole(value: Any) -> Change:
    return lambda body, req: value


def forbidden(error: Any) -> Callable[..., Response]:
    """A 403 whose `error` member is `error`: Bitbucket's shape is an object with a message."""
    return raw(403, json.dumps({"type": "error", "error": error}).encode())


def scope_error(detail: Any) -> dict[str, Any]:
    return {"message": "Your credentials lack one or more required privilege scopes.", "detail": detail}


@dataclass(frozen=True)
class Case:
    path: str
    change: Change | None = None  # rewrites the JSON body...
    answer: Callable[..., Response] | None = None  # ...or replaces the whole answer
    method: str = "GET"
    credential: str = "api_token"
    code: int = 3
    names: tuple[str, ...] = ()  # the endpoint, and what was wrong, in the output and the report
    unknown: tuple[str, ...] = ()  # categories that must be `unknown` (never ok, never missing)
    side: str = "backup"  # the side of those categories
    variables: tuple[tuple[str, str], ...] = ()
    switches: tuple[tuple[str, Any], ...] = ()  # the simulator's (test/simulator/__init__.py)
    owner: str | None = None  # the report's credential owner, when the case is about it
    source: str | None = None  # a source the granted scopes must be learnt from


def _repos(what: str, **kw: Any) -> Case:
    return Case(REPOS, kw.pop("change"), names=("GET /repositories/acme", what), unknown=("repositories",), **kw)


def _perms(what: str, **kw: Any) -> Case:
    # The whole permission list is read when a shortcut is not trusted (no `size`): with every
    # repository admin by role=admin, the filtered way never asks it (issue 12).
    return Case(
        PERMS,
        kw.pop("change"),
        names=("GET /user/workspaces/acme/permissions/repositories", what),
        unknown=("repository-admin",),
        switches=(("page_size", False),),
        **kw,
    )


def _pulls403(error: Any, what: str) -> Case:
    return Case(PULLS, answer=forbidden(error), names=("/pullrequests", what), unknown=("pull-requests",))


RESTORE = (("CHECK_RESTORE", "true"),)


def _reveal(granted: Any, what: str) -> Case:
    """The 403 of the scope-revealing read names every granted scope, in a wrong shape. The live
    reads prove the backup, so only the restore, judged from the granted scopes, is unknown
    (without the change it is `missing`: the token has no write scope)."""
    names = ("/pipelines-config/runners", what)
    return Case(
        RUNNERS,
        put("error.detail.granted", granted),
        names=names,
        unknown=UNKNOWN_RESTORE,
        side="restore",
        variables=RESTORE,
    )


def _token(change: Change, what: str, code: int = 3) -> Case:
    return Case(TOKEN, change, method="POST", credential="oauth", code=code, names=("/site/oauth2/access_token", what))


CASES: dict[str, Case] = {
    # `error`, `required`, `message`, `detail` in a 403 on a live read
    "403-error-string": _pulls403("denied", "'error'"),
    "403-error-list": _pulls403(["denied", 1], "'error'"),
    "403-error-number": _pulls403(403, "'error'"),
    "403-message-object": _pulls403({"message": {"text": "no"}}, "'error.message'"),
    "403-detail-number": _pulls403(scope_error(7), "'error.detail'"),
    "403-required-number": _pulls403(scope_error({"required": 5, "granted": ALL_READ}), "'error.detail.required'"),
    "403-required-string": _pulls403(
        scope_error({"required": "read:pullrequest:bitbucket"}), "'error.detail.required'"
    ),
    "403-required-non-strings": _pulls403(scope_error({"required": [None, 3]}), "'error.detail.required[0]'"),
    "403-granted-number": _pulls403(
        scope_error({"required": ["read:pullrequest:bitbucket"], "granted": 1}), "'error.detail.granted'"
    ),
    "403-body-list": Case(
        PULLS, answer=raw(403, b"[1, 2]"), names=("/pullrequests", "a list"), unknown=("pull-requests",)
    ),
    # `granted` of the scope-revealing 403: the granted scopes cannot be known
    "granted-string": _reveal("read:repository:bitbucket", "'error.detail.granted'"),
    "granted-non-strings": _reveal([1, None, "read:repository:bitbucket"], "'error.detail.granted[0]'"),
    "granted-object": _reveal({"read:repository:bitbucket": True}, "'error.detail.granted'"),
    "reveal-error-string": Case(
        RUNNERS,
        put("error", "nope"),
        names=("/pipelines-config/runners", "'error'"),
        unknown=UNKNOWN_RESTORE,
        side="restore",
        variables=RESTORE,
    ),
    # a 200 on a live read that is not a page
    "pulls-200-list": Case(PULLS, whole([]), names=("/pullrequests", "a list"), unknown=("pull-requests",)),
    "pulls-200-string": Case(PULLS, whole("ok"), names=("/pullrequests", "a string"), unknown=("pull-requests",)),
    "pulls-values-number": Case(
        PULLS, put("values", 3), names=("/pullrequests", "'values'"), unknown=("pull-requests",)
    ),
    # the permission of each repository
    "permission-number": _perms("'values[0].permission'", change=put("values.0.permission", 3)),
    "permission-owner": _perms("'values[0].permission'", change=put("values.0.permission", "owner")),
    "permission-null": _perms("'values[2].permission'", change=put("values.2.permission", None)),
    "perms-null-item": _perms("'values[1]' is null, expected an object", change=put("values.1", None)),
    "perms-number-item": _perms("'values[1]' is 42, expected an object", change=put("values.1", 42)),
    "perms-extra-null-item-counted": _perms(  # every repository's permission is known, one entry is not
        "'values[6]' is null, expected an object",
        change=lambda body, req: {**body, "values": [*body["values"], None], "size": len(body["values"]) + 1},
    ),
    "perms-extra-null-item": _perms(  # `size` put back: the simulator leaves it out here (page_size=False)
        "'size' is 6 but the only page holds 7 items",
        change=lambda body, req: {**insert("values", 1, None)(body, req), "size": 6},
    ),
    "perms-repeated-repository": _perms(
        "'values[1]' names a repository already listed with another permission",
        change=lambda body, req: {
            **body,
            "values": [body["values"][0], {**body["values"][0], "permission": "read"}, *body["values"][2:]],
        },
    ),
    "perms-values-string": _perms("'values'", change=put("values", "admin")),
    "perms-values-object": _perms("'values'", change=put("values", {"permission": "admin"})),
    "perms-repository-string": _perms("'values[0].repository'", change=put("values.0.repository", "acme/repo-0000")),
    "perms-full-name-number": _perms(
        "'values[0].repository.full_name'", change=put("values.0.repository.full_name", 12)
    ),
    "perms-size-string": _perms("'size'", change=put("size", "6")),
    # the repository list
    "repos-null-item": _repos("'values[2]' is null, expected an object", change=put("values.2", None)),
    "repos-number-item": _repos("'values[0]' is 5, expected an object", change=put("values.0", 5)),
    "repos-string-item": _repos("'values[2]' is a string", change=put("values.2", "repo-0002")),
    "repos-emptied": _repos("'size' is 6 but the only page holds 0 items", change=put("values", [])),
    "repos-slug-path": _repos("'values[0].slug' is not a repository slug", change=put("values.0.slug", "../../user")),
    "repos-values-string": _repos("'values'", change=put("values", "abc")),
    "repos-values-number": _repos("'values'", change=put("values", 5)),
    "repos-values-object": _repos("'values'", change=put("values", {"slug": "repo-0000"})),
    "repos-slug-number": _repos("'values[0].slug'", change=put("values.0.slug", 7)),
    "repos-slug-null": _repos("'values[1].slug'", change=put("values.1.slug", None)),
    "repos-full-name-list": _repos("'values[0].full_name'", change=put("values.0.full_name", ["acme/x"])),
    "repos-size-string": _repos("'size'", change=put("size", "6")),
    "repos-size-negative": _repos("'size'", change=put("size", -1)),
    "repos-size-float": _repos("'size'", change=put("size", 6.5)),
    "repos-size-bool": _repos("'size'", change=put("size", True)),
    "repos-pagelen-string": _repos("'pagelen'", change=put("pagelen", "100")),
    "repos-pagelen-negative": _repos("'pagelen'", change=put("pagelen", -100)),
    "repos-pagelen-zero": _repos("'pagelen'", change=put("pagelen", 0)),
    "repos-pagelen-float": _repos("'pagelen'", change=put("pagelen", 1.5)),
    "repos-pagelen-bool": _repos("'pagelen'", change=put("pagelen", True)),
    "repos-next-number": _repos("'next'", change=put("next", 5)),
    "repos-next-object": _repos("'next'", change=put("next", {"href": "/2.0/repositories/acme?page=2"})),
    "repos-body-list": _repos("a list", change=whole([{"slug": "repo-0000"}])),
    "repos-body-null": _repos("the answer is null", change=whole(None)),
    # the user
    "user-list": Case(USER, whole([{"display_name": "x"}]), names=("GET /user", "a list"), unknown=("account",)),
    "user-number": Case(USER, whole(5), names=("GET /user", "the answer is 5"), unknown=("account",)),
    "user-empty": Case(USER, answer=raw(200, b""), names=("GET /user", "empty"), unknown=("account",)),
    # the OAuth grant
    "token-access-token-number": _token(put("access_token", 12345678901234), "'access_token'"),
    "token-access-token-null": _token(put("access_token", None), "'access_token'"),
    "token-access-token-missing": _token(put("access_token", "-"), "'access_token'"),
    "token-access-token-spaces": _token(put("access_token", "abc def\r\nX-Evil: 1"), "'access_token' holds spaces"),
    "token-access-token-list": _token(put("access_token", ["a"]), "'access_token'"),
    "token-body-list": _token(whole(["token"]), "a list"),
}

# Not failures: display text and unknown scope names are shown, and the run goes on; a broken
# list of granted scopes that no verdict needed is named as a finding.
JUNK_SCOPES = "repository, repository:admin, pullrequest, pipeline, project, read:package:bitbucket, ,, junk!word"
ACCEPTED: dict[str, Case] = {
    # a display name that is not text is not used: the next name is
    "display-name-object": Case(USER, put("display_name", {"first": "A"}), code=0, owner="acme-backup"),
    "display-name-number": Case(USER, put("display_name", 7), code=0, owner="acme-backup"),
    "display-name-list": Case(USER, put("display_name", ["a", "b"]), code=0, owner="acme-backup"),
    "display-name-blank": Case(USER, put("display_name", "  "), code=0, owner="acme-backup"),
    "names-all-odd": Case(
        USER, lambda body, req: {**body, "display_name": [], "username": 5, "nickname": None}, code=0, owner=""
    ),
    "display-name-control": Case(USER, put("display_name", "\x1b[2J\r\nINFO: \u2714 READY\u202e"), code=0),
    "display-name-long": Case(USER, put("display_name", "x" * 100_000), code=0),
    "account-id-object": Case(USER, put("account_id", {"id": 1}), code=0, owner="Acme Backup"),
    "username-number": Case(USER, put("username", 5), code=0, owner="Acme Backup"),
    "granted-unknown-names": Case(
        RUNNERS,
        put("error.detail.granted", [*ALL_READ, "read:package:bitbucket", "write:test:bitbucket", "junk"]),
        code=0,
        names=("read:package:bitbucket", "write:test:bitbucket", "junk"),
    ),
    "required-unknown-name": Case(
        PULLS,
        answer=forbidden(scope_error({"required": ["read:package:bitbucket"], "granted": ALL_READ})),
        code=1,
        names=("read:package:bitbucket",),
    ),
    "x-oauth-scopes-junk": Case(
        r"^/2\.0/",
        answer=lambda req, response: Response(
            response.status, response.body, response.content_type, {**response.headers, "x-oauth-scopes": JUNK_SCOPES}
        ),
        credential="access_token",
        code=0,
        names=("read:package:bitbucket", "junk!word"),
    ),
    "granted-string-backup-only": Case(
        RUNNERS,
        put("error.detail.granted", "read"),
        code=0,
        names=("/pipelines-config/runners", "'error.detail.granted'"),
    ),
    "token-scopes-list": _token(granted_as("scopes", CLASSIC_READ), "'scopes'", code=0),
    "token-scope-list": _token(granted_as("scope", CLASSIC_READ), "'scope'", code=0),
    "token-scope-number": _token(granted_as("scope", 1), "'scope'", code=0),
    **{
        f"token-{key}-read": Case(  # `scope` since 2026-05-04, `scopes` before: both are read
            TOKEN, granted_as(key), method="POST", credential="oauth-no-headers", code=0, source="OAuth token response"
        )
        for key in ("scope", "scopes")
    },
}


def _run(start, run_pipe, case: Case):
    cred = CREDENTIALS[case.credential]()
    sim = start([cred], **dict(case.switches))
    hits = [0]

    def counted(req: Any, response: Response) -> Response | None:
        hits[0] += 1
        if case.answer is not None:
            return case.answer(req, response)
        return None

    if case.change is not None:
        rewrite(sim, case.path, case.change, case.method)
    tamper(sim, case.path, counted, case.method)
    run = run_pipe(sim, cred, TIMEOUT=TIMEOUT, **dict(case.variables))
    assert hits[0], f"{case.path} was never asked: the case tests nothing"
    return run


def _assert_clean(run) -> dict[str, Any]:
    assert "Traceback" not in run.output, run.output
    assert "Internal error" not in run.output, run.output
    assert "failed unexpectedly" not in run.output, run.output
    report = run.report
    jsonschema.validate(report, SCHEMA, format_checker=jsonschema.FormatChecker())
    return report


@pytest.mark.parametrize("credential", sorted(CREDENTIALS))
def test_the_untouched_answers_are_ready(start, run_pipe, credential):
    """The baseline every case changes one field of."""
    run = _run(start, run_pipe, Case(r"^/2\.0/user$", credential=credential))
    _assert_clean(run)
    assert run.code == 0, run.output


@pytest.mark.parametrize("name", CASES)
def test_a_wrong_shape_is_inconclusive_and_named(start, run_pipe, name):
    case = CASES[name]
    run = _run(start, run_pipe, case)
    report = _assert_clean(run)
    assert run.code == case.code, run.output
    _assert_named(run, report, case)
    if case.code != 3:
        return
    assert report["verdict"] == "inconclusive", run.output
    sides = ("backup", "restore") if report.get("check_restore") else ("backup",)
    for category in (c for ws in report["workspaces"] for c in ws.get("categories", [])):  # never missing on a guess
        assert all(category[side] != "missing" for side in sides), category
    for category_id in case.unknown:
        assert run.category(category_id)[case.side] == "unknown", run.category(category_id)


def _assert_named(run, report: dict[str, Any], case: Case) -> None:
    text = json.dumps(report, ensure_ascii=False)
    for word in case.names:
        assert word in run.output, (word, run.output)
        assert word in text, (word, "not in report.json")


@pytest.mark.parametrize("name", ACCEPTED)
def test_display_text_and_unknown_scope_names_are_accepted(start, run_pipe, name):
    case = ACCEPTED[name]
    run = _run(start, run_pipe, case)
    report = _assert_clean(run)
    assert run.code == case.code, run.output
    _assert_named(run, report, case)
    owner = report["credential"]["owner"]
    assert owner is None or (isinstance(owner, str) and len(owner) <= 300), owner
    if case.owner is not None:
        assert owner == (case.owner or None), owner
    if case.source is not None:
        assert case.source in report["credential"]["scopes_source"], report["credential"]


# --- the validators themselves -------------------------------------------------------------


def test_validators_name_the_endpoint_and_the_place():
    with pytest.raises(shapes.ShapeError) as caught:
        shapes.expect_dict([1], "GET /x", "values[3]")
    assert str(caught.value) == "GET /x: 'values[3]' is a list, expected an object"
    with pytest.raises(shapes.ShapeError, match=r"GET /x: 'values\[3\]' is null, expected an object"):
        shapes.expect_dict(None, "GET /x", "values[3]")
    with pytest.raises(shapes.ShapeError, match="the answer is a string, expected an object"):
        shapes.expect_dict("s", "GET /x")
    with pytest.raises(shapes.ShapeError, match="'size' is a boolean"):
        shapes.expect_int(True, "GET /x", "size")
    with pytest.raises(shapes.ShapeError, match="'size' is -1, expected a whole number >= 0"):
        shapes.expect_int(-1, "GET /x", "size")
    with pytest.raises(shapes.ShapeError, match="'pagelen' is 1.5, expected a whole number >= 1"):
        shapes.expect_int(1.5, "GET /x", "pagelen", minimum=1)
    assert shapes.expect_int(0, "GET /x", "size") == 0
    assert shapes.expect_str_list(["a", "b"], "GET /x", "granted") == ("a", "b")
    with pytest.raises(shapes.ShapeError, match=r"'granted\[1\]' is null, expected a string"):
        shapes.expect_str_list(["a", None], "GET /x", "granted")


def test_a_long_wrong_value_is_described_briefly():
    with pytest.raises(shapes.ShapeError) as caught:
        shapes.expect_str(12345678901234567890, "GET /x", "slug")
    assert "a number" in str(caught.value) and "1234567890" not in str(caught.value)
    with pytest.raises(shapes.ShapeError) as caught:
        shapes.expect_one_of("x" * 5000, ("admin", "read"), "GET /x", "permission")
    assert len(str(caught.value)) < 200


def test_scopes_no_read_proved_are_unknown_when_their_only_source_was_broken(start, run_pipe):
    """No repository, so no per-repository read runs; the token response, the only source of the
    granted scopes, names them in a wrong shape: pull requests are `unknown`, not assumed ok."""
    cred = oauth(scope_headers=False)
    sim = start([cred], workspaces=[workspace(n=0)])
    rewrite(sim, TOKEN, granted_as("scope", CLASSIC_READ), "POST")
    run = run_pipe(sim, cred, TIMEOUT=TIMEOUT)
    _assert_clean(run)
    assert run.code == 1, run.output  # the credential sees no repositories: that part is a fact
    pulls = run.category("pull-requests")
    assert pulls["backup"] == "unknown", pulls
    assert any("/site/oauth2/access_token: 'scope' is a list" in r for r in pulls["details"]["backup"]["reasons"])


@pytest.mark.parametrize("slug", [".", "..", ".hidden"])
def test_a_dot_slug_is_never_put_in_a_path(start, run_pipe, slug):
    """httpx removes dot segments: a slug '..' would make /repositories/acme/../hooks read
    /repositories/hooks, another endpoint, and its answer would count as the repository's. The
    slug is a shape problem (the listing is then not whole: unknown), never a representative."""
    cred = api_token()
    sim = start([cred])

    def dotted(body: Any, req: Any) -> Any:
        values = [
            {**v, "slug": slug, "full_name": f"acme/{slug}"} if i == 0 else v for i, v in enumerate(body["values"])
        ]
        return {**body, "values": values}

    def dotted_permission(body: Any, req: Any) -> Any:
        first, *rest = body["values"]
        first = {**first, "permission": "admin", "repository": {**first["repository"], "full_name": f"acme/{slug}"}}
        return {**body, "values": [first, *rest]}

    rewrite(sim, REPOS, dotted)
    rewrite(sim, PERMS, dotted_permission)
    run = run_pipe(sim, cred, TIMEOUT=TIMEOUT)
    _assert_clean(run)
    paths = sorted({r.path for r in sim.requests})
    assert {p.split("/")[3] for p in paths if p.startswith("/2.0/repositories/")} == {"acme"}, paths
    assert not any(f"/acme/{slug}/" in p or f"/acme/{slug}.git" in p for p in paths), paths  # API and git
    assert run.code == 3, run.output
    assert "'values[0].slug' is not a repository slug" in run.output, run.output


def test_scope_names_are_bounded_in_every_answer():
    """Bitbucket has about 60 scope names: an answer naming hundreds (or a name of hundreds of
    characters) is not Bitbucket's, whether a 403's list, the token's `scope` or a header."""
    names = [f"read:s{i}:bitbucket" for i in range(shapes.MAX_SCOPES)]
    assert shapes.expect_scope_list(names, "GET /x", "error.detail.granted") == tuple(names)
    assert shapes.expect_scope_text(" ".join(names), "POST /t", "scope") == " ".join(names)
    too_many = [*names, "one:more:bitbucket"]
    with pytest.raises(shapes.ShapeError, match="'error.detail.required' names more than 200 scopes"):
        shapes.expect_scope_list(too_many, "GET /x", "error.detail.required")
    with pytest.raises(shapes.ShapeError, match="'scope' names more than 200 scopes"):
        shapes.expect_scope_text(",".join(too_many), "POST /t", "scope")
    with pytest.raises(shapes.ShapeError, match="a scope name longer than 100 characters"):
        shapes.expect_scope_list(["read:" + "x" * 100], "GET /x", "error.detail.granted")
    evidence = ScopeEvidence()
    request = httpx.Request("GET", "https://api.bitbucket.org/2.0/user")
    evidence.observe(httpx.Response(200, headers={"x-oauth-scopes": ", ".join(too_many)}, request=request))
    assert evidence.granted is None and evidence.problems == [
        "GET /2.0/user: 'x-oauth-scopes' names more than 200 scopes"
    ], evidence.problems
    for start in range(0, 400, 100):  # each answer under the bound, together over it
        evidence.learn([f"read:t{i}:bitbucket" for i in range(start, start + 100)], "x-oauth-scopes header")
    assert len(evidence.granted) == 200 and "more than 200 different scopes" in evidence.problems[-1]
