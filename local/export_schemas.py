"""`make schemas`: writes the JSON Schemas of the public contracts, and the HTTP API's OpenAPI document, under
schemas/."""

import json

from igdm.contracts import events, outbound
from local import openapi
from local.aws.template import ROOT

SCHEMAS = {
    "inbound-event.v1.json": events.json_schema,
    "outbound-message.v1.json": outbound.json_schema,
    "openapi.v1.json": openapi.document,
}


def render(schema: dict[str, object]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    for name, build in SCHEMAS.items():
        (ROOT / "schemas" / name).write_text(render(build()), encoding="utf-8")
        print(f"wrote schemas/{name}")


if __name__ == "__main__":
    main()
