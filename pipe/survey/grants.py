"""ScopeEvidence: the scopes Bitbucket reveals the credential holds, without asking for them.

Three sources, each named in the report: the `x-oauth-scopes` header of any answer (read by
`observe`, which the survey attaches to the client as its observer: every answer passes by
it), the granted list in a 403's error detail (`learn_from`, called wherever a 403 is judged),
and the OAuth token response (survey.auth). `reveal` asks one endpoint whose 403 lists the
granted scopes, when nothing else has named them.

Not every source is whole. The header (documented for access tokens, observed for API tokens)
and the token response name every scope the credential holds: a scope they leave out is proven
absent (`exhaustive`). A 403's `granted` list is not documented to be complete (Bitbucket may
show a part of it): a scope it names is held, one it leaves out is only not proven, so the
assessment calls it unknown and names the source, never missing on a guess.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import httpx

from pipe import scopes
from pipe.client import ApiFailure, Client
from pipe.shapes import MAX_SCOPES, ErrorPayload, ShapeError, error_payload, expect_scope_text, short

# An operation whose scope a backup credential rarely holds: its 403 lists the granted scopes.
SCOPE_REVEAL = "/repositories/{workspace}/{repo_slug}/pipelines-config/runners"
HEADER = "x-oauth-scopes header"
DETAIL = "403 error detail"
TOKEN_RESPONSE = "OAuth token response"
# The sources that name every granted scope (a 403's detail may name only some).
WHOLE_SOURCES = frozenset({HEADER, TOKEN_RESPONSE})


@dataclass
class ScopeEvidence:
    granted: set[str] | None = None
    sources: list[str] = field(default_factory=list)
    credential_type: str | None = None
    # Answers that would have named granted scopes but were not in Bitbucket's shape: not
    # used, and named wherever the granted scopes were needed.
    problems: list[str] = field(default_factory=list)
    # The scope-revealing read is made at most once per run, by the first workspace to reach it:
    # whether another workspace's 403 has arrived by then is a race, so it is not consulted. The
    # others wait for it (`revealed`), so that for every workspace the scopes are settled alike.
    reveal_claimed: bool = False
    revealed: asyncio.Event = field(default_factory=asyncio.Event)

    def learn(self, found: list[str] | tuple[str, ...], source: str) -> None:
        found = [s for s in found if s.strip()]
        if not found:
            return
        granted = (self.granted or set()) | set(found)
        if len(granted) > MAX_SCOPES:  # each answer is bounded (shapes); so is what they name together
            problem = f"{source}: Bitbucket's answers name more than {MAX_SCOPES} different scopes; not used"
            if problem not in self.problems:
                self.problems.append(problem)
            return
        self.granted = granted
        if source not in self.sources:
            self.sources.append(source)

    @property
    def exhaustive(self) -> bool:
        """True when a source that names every granted scope answered: a scope not granted is then
        proven absent. Otherwise the granted scopes are only a lower bound."""
        return any(source in WHOLE_SOURCES for source in self.sources)

    def doubt(self, problem: ShapeError) -> None:
        if str(problem) not in self.problems:
            self.problems.append(str(problem))

    def observe(self, response: httpx.Response) -> None:
        """The client's observer, headers only: every answer may name the granted scopes. Header
        values are always text; unknown scope names are kept and shown (new families appear every
        year). A 403's detail is read from its Reply, where its shape is checked (see `learn_from`)."""
        self.credential_type = short(response.headers.get("x-credential-type", "")) or self.credential_type
        header = response.headers.get("x-oauth-scopes")
        try:
            where = f"{response.request.method} {response.request.url.path[:120]}"
            text = expect_scope_text(header, where, "x-oauth-scopes") if header is not None else None
        except ShapeError as exc:
            self.doubt(exc)
            return
        self.learn(scopes.parse_list(text), HEADER)

    def learn_from(self, payload: ErrorPayload) -> None:
        if payload.granted is not None:
            self.learn(payload.granted, DETAIL)


def fill(path: str, workspace: str, repo: str | None) -> str:
    """A catalog path template with the workspace and repository put in."""
    return path.replace("{workspace}", workspace).replace("{repo_slug}", repo or "")


async def reveal(client: Client, grants: ScopeEvidence, workspace: str, repo: str | None) -> None:
    """One read meant to be refused, once per run, unless a source that names every scope answered."""
    if grants.reveal_claimed:
        await grants.revealed.wait()
        return
    if grants.exhaustive or not repo:
        return
    grants.reveal_claimed = True
    path = fill(SCOPE_REVEAL, workspace, repo)
    try:
        with contextlib.suppress(ApiFailure):  # only a chance to learn more; the live reads stand alone
            reply = await client.get(path, {"pagelen": 1})
            if reply.status == 403:
                try:
                    grants.learn_from(error_payload(reply.body, f"GET {path}"))
                except ShapeError as exc:
                    grants.doubt(exc)
    finally:
        grants.revealed.set()
