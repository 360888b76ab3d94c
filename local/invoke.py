"""`make invoke FUNCTION=<LogicalId> EVENT=events/<file>.json`: one function, one event, as
`sam local invoke` would run it, against the running local stack (`make run`): its emulator, its Graph sandbox
and its callback inbox. Without one it says so, rather than run against an empty emulator of its own."""

import argparse
import json
import sys
from pathlib import Path

from local.aws.runtime import FunctionRuntime
from local.stack import LOOPBACK, LocalConfig, provision_stack, require_running


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("function", help="logical id of an AWS::Serverless::Function in template.yaml")
    parser.add_argument("event", type=Path, help="JSON event file, e.g. events/apigw_webhook_text.json")
    parser.add_argument("--one-line", action="store_true", help="print the result as one line of JSON")
    args = parser.parse_args(argv)
    event = json.loads(args.event.read_text(encoding="utf-8"))
    config = LocalConfig.from_environment()
    require_running(config)
    stack = provision_stack(config)
    if args.function not in stack.resources("AWS::Serverless::Function"):
        names = ", ".join(stack.resources("AWS::Serverless::Function"))
        print(f"no function {args.function!r} in template.yaml; functions: {names}", file=sys.stderr)
        return 2
    # As in make run: the Graph sandbox's address (GRAPH_API_BASE_URL overrides it) and the local
    # callback inbox allowed, so an invoked function talks to nothing but 127.0.0.1.
    graph_url = config.graph_api_base_url or f"http://{LOOPBACK}:{config.graph_port}"
    result = FunctionRuntime(stack, config.function_environment(graph_url)).invoke(args.function, event)
    print(json.dumps(result) if args.one_line else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
