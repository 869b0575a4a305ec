"""A DNS provider written from docs/providers.md in Python (componentize-py), as a third
party would: the `dns` role's `dns-record` kind in one zone (config `zone`) of a
Cloudflare-style API (`base-url`, token `api-token`), the owner tag in the record's
comment. The same provider as tests/plugins/simple-dns (Rust); both pass the provider
kit (tests/e2e/provider_kit.rs).

Build: componentize-py -d ../../../wit -w provider-plugin componentize app -o python_dns.wasm
"""

# Every import at the top level: the module runs once at build time and is snapshotted.
import json
from typing import List, Optional, Tuple
from urllib.parse import quote

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.provider import (
    ConfigKey,
    ProgressReport,
    ProgressState,
    ProviderError_InvalidConfig,
    ProviderError_NotFound,
    ProviderError_Permanent,
    ProviderError_Transient,
    ProviderError_Unauthorized,
    ProviderInfo,
    Resource,
    ResourcePage,
    TransientError,
)
from wit_world.imports import host
from wit_world.imports.host import AuthScheme_Bearer, Credential, HttpRequest, Method

KIND = "dns-record"
STATE = {"base": None, "zone": None, "zone_id": None}


def fail(error):
    raise Err(error)


def check_kind(kind: str):
    if kind != KIND:
        fail(ProviderError_Permanent(f"this provider manages `{KIND}`, not `{kind}`"))


def call(method: Method, path: str, body=None):
    """The API's `result`, or the provider error its answer means."""
    request = HttpRequest(
        method=method,
        url=STATE["base"] + path,
        headers=[("accept", "application/json"), ("content-type", "application/json")],
        body=None if body is None else json.dumps(body).encode(),
        credential=Credential(key="api-token", scheme=AuthScheme_Bearer()),
        timeout_ms=20000,
    )
    try:
        response = host.http_send(request)
    except Err as e:
        fail(ProviderError_Transient(TransientError(f"cannot reach the DNS API: {e.value}", None)))
    try:
        envelope = json.loads(bytes(response.body) or b"{}")
    except ValueError:
        envelope = {}
    status = response.status
    if 200 <= status < 300 and envelope.get("success"):
        return envelope.get("result")
    message = json.dumps(envelope.get("errors", []))
    if status == 429 or status >= 500:
        retry = dict(response.headers).get("retry-after")
        after = int(retry) * 1000 if retry and retry.isdigit() else None
        fail(ProviderError_Transient(TransientError(f"the DNS API answered {status}: {message}", after)))
    if status in (401, 403):
        fail(ProviderError_Unauthorized(f"the DNS API refused the token: {message}"))
    if status == 404:
        fail(ProviderError_NotFound(message))
    fail(ProviderError_Permanent(f"the DNS API answered {status}: {message}"))


def zone() -> str:
    if STATE["zone_id"] is None:
        name = STATE["zone"]
        zones = call(Method.GET, f"/zones?name={quote(name, safe='')}") or []
        found = [z["id"] for z in zones if z.get("name") == name]
        if not found:
            fail(ProviderError_Permanent(f"the token cannot see a zone named {name}"))
        STATE["zone_id"] = found[0]
    return STATE["zone_id"]


def to_resource(record) -> Resource:
    comment = record.get("comment") or None
    live = {
        "type": record.get("type"),
        "content": record.get("content"),
        "ttl": record.get("ttl"),
        "proxied": bool(record.get("proxied")),
    }
    outputs = {"record_id": record.get("id"), "name": record.get("name")}
    return Resource(KIND, record["id"], record.get("name", ""), comment, json.dumps(live), json.dumps(outputs))


def parse_desired(text: str):
    try:
        desired = json.loads(text)
    except ValueError as e:
        fail(ProviderError_Permanent(f"invalid desired {KIND}: {e}"))
    unknown = set(desired) - {"type", "content", "ttl", "proxied"}
    if unknown or "content" not in desired:
        fail(ProviderError_Permanent(f"invalid desired {KIND}: {text}"))
    return {
        "type": desired.get("type", "A"),
        "content": desired["content"],
        "ttl": desired.get("ttl", 1),
        "proxied": bool(desired.get("proxied", False)),
    }


def get(record_id: str):
    try:
        return call(Method.GET, f"/zones/{zone()}/dns_records/{record_id}")
    except Err as e:
        if isinstance(e.value, ProviderError_NotFound):
            return None
        raise


def named(name: str):
    return call(Method.GET, f"/zones/{zone()}/dns_records?name={quote(name, safe='')}") or []


class Provider(exports.Provider):
    def describe(self) -> ProviderInfo:
        return ProviderInfo(
            name="python-dns",
            version="0.3.1",
            description="DNS records in one zone of a Cloudflare-style API (Python)",
            kinds=[KIND],
            config=[
                ConfigKey("base-url", "the API's base URL", False, True),
                ConfigKey("zone", "the zone the records live in", False, True),
                ConfigKey("api-token", "a token that can edit the zone's records", True, True),
            ],
            default_origins=[],
            rate_limit=None,
        )

    def configure(self, config: List[Tuple[str, str]]) -> None:
        values = dict(config)
        base = values.get("base-url", "").rstrip("/")
        if not base.startswith(("http://", "https://")):
            fail(ProviderError_InvalidConfig(f"`base-url` must be an http(s) URL, not {base!r}"))
        if not values.get("zone"):
            fail(ProviderError_InvalidConfig("`zone` is required"))
        STATE.update(base=base, zone=values["zone"], zone_id=None)

    def read(self, kind: str, id: str) -> Optional[Resource]:
        check_kind(kind)
        record = get(id)
        return None if record is None else to_resource(record)

    def create(self, kind: str, name: str, desired: str, owner: str) -> Resource:
        check_kind(kind)
        body = parse_desired(desired)
        # A retried create finds its own record: adopt it.
        for record in named(name):
            if record.get("comment") == owner:
                return to_resource(call(Method.PATCH, f"/zones/{zone()}/dns_records/{record['id']}", body))
        return to_resource(call(Method.POST, f"/zones/{zone()}/dns_records", dict(body, name=name, comment=owner)))

    def update(self, kind: str, id: str, desired: str) -> Resource:
        check_kind(kind)
        body = parse_desired(desired)
        if get(id) is None:
            fail(ProviderError_NotFound(f"record {id} no longer exists"))
        return to_resource(call(Method.PATCH, f"/zones/{zone()}/dns_records/{id}", body))

    def delete(self, kind: str, id: str, owner: str, purge: bool) -> None:
        check_kind(kind)
        current = get(id)
        if current is None:
            return
        if (current.get("comment") or None) != owner:
            fail(ProviderError_Permanent(f"refusing to delete dns-record {id}: it does not carry the owner tag `{owner}`"))
        try:
            call(Method.DELETE, f"/zones/{zone()}/dns_records/{id}")
        except Err as e:
            if not isinstance(e.value, ProviderError_NotFound):
                raise

    def progress(self, kind: str, id: str) -> ProgressReport:
        check_kind(kind)
        return ProgressReport(ProgressState.READY, None)

    def list(self, kind: str, owner_prefix: str, cursor: Optional[str]) -> ResourcePage:
        check_kind(kind)
        page = int(cursor or "1")
        records = call(
            Method.GET,
            f"/zones/{zone()}/dns_records?comment.startswith={quote(owner_prefix, safe='')}&per_page=100&page={page}",
        ) or []
        ours = [
            to_resource(r)
            for r in records
            if owner_prefix.startswith("fabrik:") and (r.get("comment") or "").startswith(owner_prefix)
        ]
        return ResourcePage(ours, str(page + 1) if len(records) == 100 else None)

    def lookup(self, kind: str, name: str, owner: str, desired: Optional[str]) -> Optional[Resource]:
        check_kind(kind)
        records = named(name)
        ours = [r for r in records if r.get("comment") == owner]
        chosen = (ours or records or [None])[0]
        return None if chosen is None else to_resource(chosen)
