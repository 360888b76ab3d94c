"""Reads template.yaml and creates its tables, queues and secrets in an AWS endpoint (the emulator).

The template is the single source of truth: nothing here names a table, queue or attribute. It applies
the AWS::LanguageExtensions transform as CloudFormation does before anything else (Fn::ForEach loops,
Fn::FindInMap on the template's Mappings, Fn::ToJsonString), understands the intrinsic functions the
template uses (Ref, Fn::Sub, Fn::GetAtt, Fn::Join) and fails loudly on anything else, so a template
change the local stack cannot follow is noticed.
"""

import json
import re
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account


class TemplateError(RuntimeError):
    pass


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short tags (!Ref, !Sub ...) into their long form."""


def _construct_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise TemplateError(f"unexpected YAML node for !{tag_suffix}")
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506  # nosec B506 # SafeLoader + CFN tags
    return language_extensions(document)


def language_extensions(template: dict[str, Any]) -> dict[str, Any]:
    """The template as the AWS::LanguageExtensions transform leaves it: every Fn::ForEach loop of the
    Resources, Outputs and Conditions expanded, and every Fn::FindInMap with literal keys looked up."""
    expanded = dict(template)
    for section in ("Resources", "Outputs", "Conditions"):
        if section in expanded:
            expanded[section] = _expand_loops(expanded[section], template)
    result: dict[str, Any] = _find_in_maps(expanded, template.get("Mappings", {}))
    return result


def _expand_loops(section: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    expanded: dict[str, Any] = {}
    for key, value in section.items():
        if not key.startswith("Fn::ForEach::"):
            expanded[key] = value
            continue
        identifier, collection, fragment = value
        for item in _collection(collection, template):
            for output_key, output_value in fragment.items():
                replaced = {_replace(output_key, identifier, item): _replace(output_value, identifier, item)}
                expanded.update(_expand_loops(replaced, template))  # loops may nest
    return expanded


def _collection(value: Any, template: dict[str, Any]) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    name = value.get("Ref") if isinstance(value, dict) else None
    parameter = template.get("Parameters", {}).get(name) if isinstance(name, str) else None
    if parameter is None or parameter.get("Type") != "CommaDelimitedList":
        raise TemplateError(f"Fn::ForEach needs a list or a CommaDelimitedList parameter, not {value!r}")
    return [item.strip() for item in str(parameter.get("Default", "")).split(",")]


def _replace(value: Any, identifier: str, item: str) -> Any:
    """``${Identifier}`` and ``&{Identifier}`` in every string, and ``Ref: Identifier``, become the item; a
    Ref or Fn::Sub left with nothing to substitute becomes the plain value it names."""
    if isinstance(value, str):
        return value.replace("${" + identifier + "}", item).replace("&{" + identifier + "}", re.sub(r"\W", "", item))
    if isinstance(value, list):
        return [_replace(v, identifier, item) for v in value]
    if not isinstance(value, dict):
        return value
    if value == {"Ref": identifier}:
        return item
    replaced = {_replace(k, identifier, item): _replace(v, identifier, item) for k, v in value.items()}
    ref = replaced.get("Ref")
    if (
        len(replaced) == 1
        and isinstance(ref, dict)
        and isinstance(ref.get("Fn::Sub"), str)
        and "${" not in ref["Fn::Sub"]
    ):
        return {"Ref": ref["Fn::Sub"]}  # Ref: !Sub ${Name}Function, the logical id known
    return replaced


def _find_in_maps(value: Any, mappings: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_find_in_maps(v, mappings) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and "Fn::FindInMap" in value:
        arguments = _find_in_maps(value["Fn::FindInMap"], mappings)
        name, top, second = arguments[:3]
        if all(isinstance(k, str) for k in (name, top, second)):
            found = mappings.get(name, {}).get(top, {}).get(second)
            if found is None and len(arguments) > 3:
                found = arguments[3].get("DefaultValue")
            if found is None:
                raise TemplateError(f"Fn::FindInMap finds nothing at {name}.{top}.{second}")
            return found
    return {k: _find_in_maps(v, mappings) for k, v in value.items()}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # may hold {name} segments, as API Gateway's route keys do
    function_id: str
    authorizer: "Authorizer | None" = None

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when ``method`` and ``path`` are this route's, else None."""
        if method != self.method:
            return None
        wanted, given = self.path.split("/"), path.split("/")
        if len(wanted) != len(given):
            return None
        found = {}
        for part, value in zip(wanted, given, strict=True):
            if part.startswith("{") and part.endswith("}"):
                if not value:
                    return None
                found[part[1:-1]] = value
            elif part != value:
                return None
        return found


@dataclass(frozen=True)
class Authorizer:
    """An HttpApi Lambda authorizer (payload 2.0, simple responses) as the template declares it."""

    function_id: str
    headers: tuple[str, ...]  # the identity sources: request headers
    cache_seconds: int


@dataclass
class Stack:
    """What provisioning created: each resource's Ref value and attributes, by logical id."""

    name: str
    template: dict[str, Any]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v.get("Type") == resource_type}

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsic functions against created resources, parameters and pseudo parameters."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                return self._get_att(arg[0], arg[1])
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                return str(arg[0]).join(str(self.resolve(v)) for v in self._list(arg[1]))
            if key == "Fn::ToJsonString":
                return json.dumps(self.resolve(arg), separators=(",", ":"))
            if key.startswith("Fn::") or key == "Condition":
                raise TemplateError(f"the local stack does not support {key}")
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::StackName": self.name,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.refs:
            return self.refs[name]
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            return str(parameters[name].get("Default", ""))
        raise _Unresolved(name)

    def _list(self, value: Any) -> list[Any]:
        """A literal list, or a Ref to a CommaDelimitedList parameter (its default, split)."""
        if isinstance(value, list):
            return value
        name = value.get("Ref") if isinstance(value, dict) else None
        parameter = self.template.get("Parameters", {}).get(name) if isinstance(name, str) else None
        if parameter is None or parameter.get("Type") != "CommaDelimitedList":
            raise TemplateError(f"Fn::Join needs a list or a CommaDelimitedList parameter, not {value!r}")
        return [item.strip() for item in str(parameter.get("Default", "")).split(",")]

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if (logical_id, attribute) in self.attributes:
            return self.attributes[(logical_id, attribute)]
        raise _Unresolved(f"{logical_id}.{attribute}")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self._get_att(logical_id, attribute)
            return self._ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def routes(self) -> list[Route]:
        found = []
        for logical_id, resource in self.resources("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event.get("Type") == "HttpApi":
                    props = event["Properties"]
                    name = (props.get("Auth") or {}).get("Authorizer")
                    authorizer = self._authorizer(props.get("ApiId"), name) if name and name != "NONE" else None
                    found.append(Route(props["Method"].upper(), props["Path"], logical_id, authorizer))
        return found

    def _authorizer(self, api: Any, name: str) -> Authorizer:
        api_id = api.get("Ref") if isinstance(api, dict) else None
        declared = (self.template["Resources"].get(api_id, {}).get("Properties", {}).get("Auth") or {}).get(
            "Authorizers", {}
        )
        if name not in declared:
            raise TemplateError(f"the HttpApi {api_id} declares no authorizer {name}")
        config = declared[name]
        function = config.get("FunctionArn", {}).get("Fn::GetAtt", [None])[0]
        if (
            function is None
            or config.get("AuthorizerPayloadFormatVersion") != "2.0"
            or not config.get("EnableSimpleResponses")
        ):
            raise TemplateError(
                f"{name}: the local stack plays Lambda authorizers with payload 2.0 and simple responses"
            )
        identity = config.get("Identity") or {}
        return Authorizer(
            function, tuple(h.lower() for h in identity.get("Headers", [])), int(identity.get("ReauthorizeEvery", 300))
        )

    def scheduled_functions(self) -> list[str]:
        """Functions a schedule invokes (Schedule and ScheduleV2 events): `make run` runs them at start."""
        return [
            logical_id
            for logical_id, resource in self.resources("AWS::Serverless::Function").items()
            if any(
                e.get("Type") in ("Schedule", "ScheduleV2") for e in resource["Properties"].get("Events", {}).values()
            )
        ]

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """Globals' variables overlaid with the function's own, resolved to local values."""
        function = self.template["Resources"][logical_id]
        if function.get("Type") != "AWS::Serverless::Function":
            raise TemplateError(f"{logical_id} is not an AWS::Serverless::Function")
        variables: dict[str, Any] = {}
        globals_fn = self.template.get("Globals", {}).get("Function", {})
        variables.update(globals_fn.get("Environment", {}).get("Variables", {}))
        variables.update(function["Properties"].get("Environment", {}).get("Variables", {}))
        return {k: str(self.resolve(v)) for k, v in variables.items()}

    def function_code(self, logical_id: str) -> tuple[Path, str]:
        """(CodeUri directory, Handler) of a function."""
        props = self.template["Resources"][logical_id]["Properties"]
        handler = props.get("Handler") or self.template.get("Globals", {}).get("Function", {}).get("Handler")
        return ROOT / props["CodeUri"], str(handler)

    def layer_paths(self) -> list[Path]:
        return [ROOT / r["Properties"]["ContentUri"] for r in self.resources("AWS::Serverless::LayerVersion").values()]


class _Unresolved(Exception):
    """A reference to something not created yet; provisioning retries the resource later."""


def provision(
    clients: dict[str, Any],
    stack_name: str,
    secret_strings: dict[str, str] | None = None,
    template: dict[str, Any] | None = None,
    *,
    streams: bool = False,
) -> Stack:
    """Create the template's DynamoDB tables, SQS queues and Secrets Manager secrets.

    ``clients`` maps "dynamodb", "sqs" and "secretsmanager" to boto3 clients of the target endpoint.
    ``secret_strings`` gives local values for secrets by logical id (real ones come from Meta).
    ``streams``: enable the tables' streams the template declares, for a stack that polls them (make run, the
    outbound loop). Off elsewhere: moto keeps every stream record, and copies them with the table for each
    transaction (a 1000-event POST took 151 s instead of 39), while nothing would read them.
    """
    stack = Stack(stack_name, template or load())
    creators = {
        "AWS::DynamoDB::Table": _create_table,
        "AWS::SQS::Queue": _create_queue,
        "AWS::SecretsManager::Secret": _create_secret,
    }
    pending = {k: v for k, v in stack.template["Resources"].items() if v.get("Type") in creators}
    while pending:
        progressed = False
        for logical_id, resource in list(pending.items()):
            try:
                properties = stack.resolve(resource.get("Properties", {}))
            except _Unresolved:
                continue
            if resource["Type"] == "AWS::DynamoDB::Table" and not streams:
                properties = {k: v for k, v in properties.items() if k != "StreamSpecification"}
            creators[resource["Type"]](clients, stack, logical_id, properties, secret_strings or {})
            del pending[logical_id]
            progressed = True
        if not progressed:
            raise TemplateError(f"cannot resolve references of {sorted(pending)}")
    return stack


def _create_table(
    clients: dict[str, Any], stack: Stack, logical_id: str, props: dict[str, Any], _: dict[str, str]
) -> None:
    ddb = clients["dynamodb"]
    name = props.get("TableName") or f"{stack.name}-{logical_id}"
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    for optional in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if optional in props:
            request[optional] = props[optional]
    if "SSESpecification" in props:  # CloudFormation spells the API's Enabled as SSEEnabled
        sse = dict(props["SSESpecification"])
        request["SSESpecification"] = {"Enabled": sse.pop("SSEEnabled", True), **sse}
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    if "StreamSpecification" in props:  # CloudFormation has no StreamEnabled: a view type enables it
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    try:
        table = ddb.create_table(**request)["TableDescription"]
    except ddb.exceptions.ResourceInUseException:
        table = ddb.describe_table(TableName=name)["Table"]
    arn = table["TableArn"]
    if table.get("LatestStreamArn"):
        stack.attributes[(logical_id, "StreamArn")] = table["LatestStreamArn"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr:
        ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification=pitr)
    stack.refs[logical_id] = name
    stack.attributes[(logical_id, "Arn")] = arn


_QUEUE_ATTRIBUTES = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "MessageRetentionPeriod",
    "VisibilityTimeout",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "MaximumMessageSize",
    "SqsManagedSseEnabled",
    "KmsMasterKeyId",
)


def _create_queue(
    clients: dict[str, Any], stack: Stack, logical_id: str, props: dict[str, Any], _: dict[str, str]
) -> None:
    sqs = clients["sqs"]
    fifo = bool(props.get("FifoQueue"))
    name = props.get("QueueName") or f"{stack.name}-{logical_id}" + (".fifo" if fifo else "")
    attributes = {k: _attribute(props[k]) for k in _QUEUE_ATTRIBUTES if k in props}
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.refs[logical_id] = url
    stack.attributes[(logical_id, "Arn")] = arn
    stack.attributes[(logical_id, "QueueName")] = name
    stack.attributes[(logical_id, "QueueUrl")] = url


def _create_secret(
    clients: dict[str, Any], stack: Stack, logical_id: str, props: dict[str, Any], local_values: dict[str, str]
) -> None:
    sm = clients["secretsmanager"]
    name = props.get("Name") or f"{stack.name}-{logical_id}"
    given = local_values.get(logical_id) or props.get("SecretString")
    try:
        arn = sm.create_secret(Name=name, SecretString=given or _generated(props))["ARN"]
    except sm.exceptions.ResourceExistsException:
        if given:
            arn = sm.put_secret_value(SecretId=name, SecretString=given)["ARN"]
        else:  # generated once, as CloudFormation does: provisioning again (make invoke, tools) keeps it
            arn = sm.describe_secret(SecretId=name)["ARN"]
    stack.refs[logical_id] = arn
    stack.attributes[(logical_id, "Id")] = arn


def _generated(props: dict[str, Any]) -> str:
    spec = props.get("GenerateSecretString", {})
    alphabet = string.ascii_letters + string.digits
    generated = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    if "SecretStringTemplate" in spec:
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = generated
        return json.dumps(document)
    return generated


def _attribute(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """`python -m local.aws.template OUT.json`: the template with its language extensions expanded, for tools
    that cannot expand Fn::ForEach themselves (checkov, in make scan)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m local.aws.template", description=main.__doc__)
    parser.add_argument("out", type=Path, help="where to write the expanded template (JSON)")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(load(), indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
