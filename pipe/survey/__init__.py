"""What the credential can really do: authentication, scopes, repositories, live reads, git.

Everything here only reads. The steps, each in its module with named results:

    auth       the OAuth grant (a consumer), GET /user and the workspace: SignedIn, or a CredentialError
    grants     ScopeEvidence, the client's observer: scopes named by headers, 403 details, the token
    inventory  repositories and permissions (Lister): FirstPages early, the whole Inventory at the end
    reads      one live read per probe operation of the catalog: ProbeResult by Operation
    git        git ls-remote in a sealed room: GitResult

    workspaces which workspaces WORKSPACE '*' means: GET /user/workspaces (never for an access token)

`survey` runs them for every workspace of WORKSPACE, side by side on one client (one CONCURRENCY
bound, one TIMEOUT), and returns one Evidence (survey.evidence) per workspace, plain data for the
assessment; a workspace the credential cannot see is an Unseen in its place, naming the fix, and
never stops the others. With one workspace named, not seeing it ends the run as before (exit 2).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pipe.catalog import Catalog, Operation
from pipe.client import Client, Reply
from pipe.credential import Credential, Kind
from pipe.survey import auth, git, grants, inventory, reads, workspaces
from pipe.survey.evidence import Evidence, ProbeResult, Unseen
from pipe.variables import Config


async def survey(
    config: Config, credential: Credential, catalog: Catalog, started: float, on_secret: Callable[[str], None]
) -> list[Evidence | Unseen]:
    """Everything the credential proves in each workspace, within TIMEOUT from `started`. `on_secret`
    receives a secret learnt on the way (the OAuth access token), so that the reports redact it too."""
    scope_evidence = grants.ScopeEvidence()
    client = Client(
        config.api_url,
        None,
        concurrency=config.concurrency,
        deadline=started + config.timeout,
        observer=scope_evidence.observe,  # every answer's headers may name the granted scopes
        # One slow answer must not eat the whole TIMEOUT: each attempt gets a share of it.
        request_timeout=min(30.0, max(2.0, config.timeout / 4)),
    )
    async with client:
        token = None
        if credential.kind is Kind.OAUTH:
            token = await auth.oauth_token(config, credential, scope_evidence, client)
        if token:
            on_secret(token)
        client.authorize(auth.credentials(credential, token))
        names = await _workspaces(client, config, credential)
        several = config.several or len(names) > 1
        if not names:
            return []
        user = auth.sign_in(client)

        async def one(workspace: str) -> Evidence | Unseen:
            try:
                return await _survey(
                    client, config.for_workspace(workspace), credential, catalog, scope_evidence, token, started, user
                )
            except auth.NotVisible as exc:
                if not several:
                    raise
                return Unseen(workspace, exc.message, exc.fix)

        try:
            async with asyncio.TaskGroup() as group:  # a refused credential stops every workspace at once
                tasks = [group.create_task(one(workspace)) for workspace in names]
        except* Exception as failed:  # noqa: BLE001 - the first failure ends the run, as with one workspace
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]


async def _workspaces(client: Client, config: Config, credential: Credential) -> list[str]:
    """The workspaces to check: those WORKSPACE names, or with '*' every one the credential is a
    member of, and any a REPOSITORIES entry names besides (so that it is reported, not dropped)."""
    if not config.every_workspace:
        return list(config.workspaces)
    if credential.kind is Kind.ACCESS_TOKEN:
        names = workspaces.of_access_token(config)
    else:
        try:
            names = await workspaces.member_of(client, credential)
        except workspaces.Unauthorized:
            raise auth.rejected(credential) from None
    return list(dict.fromkeys(names + [owner for owner, _ in config.wanted]))


async def _survey(
    client: Client,
    config: Config,
    credential: Credential,
    catalog: Catalog,
    scope_evidence: grants.ScopeEvidence,
    token: str | None,
    started: float,
    user: asyncio.Task[Reply],
) -> Evidence:
    ws = config.workspace
    signed_in = await auth.authenticate(client, credential, ws, scope_evidence, user)
    settled = asyncio.Event()  # set when the scope-revealing read is done (or was not needed)
    lister = inventory.Lister(client, config, scope_evidence, credential.kind, settled)
    listing = asyncio.create_task(lister.run())
    repo = (await lister.first_pages()).representative(config.repositories)
    probes: dict[Operation, ProbeResult] = {}
    live: dict[Operation, asyncio.Task[ProbeResult]] = {}
    for op in reads.plan(catalog, credential.kind):
        answered = signed_in.answer(op)
        if answered is not None:
            probes[op] = answered
        else:
            live[op] = asyncio.create_task(reads.read(client, op, ws, repo, scope_evidence))
    cloned = asyncio.create_task(
        git.ls_remote(
            config.git_url,
            ws,
            repo,
            credential.git_username,
            token or credential.secret,
            limit=max(1.0, min(60.0, client.remaining())),
        )
    )
    revealed = asyncio.create_task(grants.reveal(client, scope_evidence, ws, repo))
    revealed.add_done_callback(lambda _: settled.set())
    await asyncio.gather(*live.values(), cloned, revealed)
    probes.update({op: task.result() for op, task in live.items()})
    found = await listing
    not_admin = found.without_admin[0].slug if found.without_admin else None
    checked = await reads.without_admin(client, probes, ws, not_admin, scope_evidence)
    return Evidence(
        credential,
        ws,
        signed_in.identity,
        scope_evidence,
        found,
        probes,
        cloned.result(),
        client.traffic,
        time.monotonic() - started,
        checked,
    )
