"""The files others depend on stay in step with the code: JSON Schema, table keys, sample events."""

import json

from igdm.contracts.events import InboundEvent
from igdm.store import keys as table
from local import export_schemas, generate_events
from local.aws.template import ROOT, load
from local.stack import DEFAULT_APP_SECRET
from webhook.signature import matching_secret


def test_committed_json_schema_matches_the_event_model() -> None:
    for name, build in export_schemas.SCHEMAS.items():
        committed = (ROOT / "schemas" / name).read_text(encoding="utf-8")
        assert committed == export_schemas.render(build()), f"schemas/{name} is stale: run `make schemas`"


def test_schema_validates_a_real_event_and_names_every_kind() -> None:
    schema = json.loads((ROOT / "schemas" / "inbound-event.v1.json").read_text(encoding="utf-8"))
    kinds = schema["$defs"]["EventKind"]["enum"]
    assert {"unknown", "gap", "story_reply", "message_status", "account_status", "customer_forgotten"} <= set(kinds)
    assert len(kinds) == 23
    assert set(schema["required"]) >= {"event_id", "kind", "account_id", "occurred_at", "raw"}
    assert set(schema["properties"]) == set(InboundEvent.model_fields)


def test_template_table_keys_and_ttl_are_the_codes() -> None:
    props = load()["Resources"]["GatewayTable"]["Properties"]
    assert [(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]] == [
        (table.PARTITION_KEY, "HASH"),
        (table.SORT_KEY, "RANGE"),
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": table.TTL_ATTRIBUTE, "Enabled": True}


def test_committed_sample_events_are_current_and_signed_with_the_local_secret() -> None:
    for name, event in {
        **generate_events.sample_events(),
        **generate_events.outbound_events(),
        **generate_events.callback_events(),
        **generate_events.schedule_events(),
    }.items():
        committed = (ROOT / "events" / name).read_text(encoding="utf-8")
        assert committed == generate_events.render(event), f"events/{name} is stale: run `make sample-events`"
        if "requestContext" in event and event["requestContext"]["http"]["method"] == "POST":
            signed = matching_secret(
                event["body"].encode(), event["headers"]["x-hub-signature-256"], [DEFAULT_APP_SECRET]
            )
            assert (signed is None) == ("bad_signature" in name)


def test_the_handlers_routes_are_the_templates() -> None:
    from local.aws.template import Stack
    from webhook.api import ROUTES

    routes = {f"{r.method} {r.path}" for r in Stack("t", load()).routes() if r.function_id == "WebhookFunction"}
    assert set(ROUTES) == routes


def test_the_api_functions_routes_are_the_templates() -> None:
    from api.service import ROUTES
    from local.aws.template import Stack

    routes = {f"{r.method} {r.path}" for r in Stack("t", load()).routes() if r.function_id == "ApiFunction"}
    assert set(ROUTES) == routes
    from api.service import CM_ROUTE

    # Every route behind the authorizer but CM.com's, whose key may come in the body: the function checks it.
    unguarded = {
        f"{r.method} {r.path}"
        for r in Stack("t", load()).routes()
        if r.function_id == "ApiFunction" and r.authorizer is None
    }
    assert unguarded == {CM_ROUTE}
