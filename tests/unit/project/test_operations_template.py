"""The template's operations and security promises, checked on the template itself: every dead-letter
queue and every function has an alarm, every alarm reaches the one topic, the dashboard resolves and
shows every alarm, the metrics watched are metrics the code emits, everything is encrypted at rest,
the API is throttled and logs no query string, and no IAM statement grants a wildcard."""

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from local.aws.template import load

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = load()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
NAMESPACE = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]


def of_type(resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v.get("Properties", {}) for k, v in RESOURCES.items() if v["Type"] == resource_type}


ALARMS = of_type("AWS::CloudWatch::Alarm")
FUNCTIONS = of_type("AWS::Serverless::Function")
QUEUES = of_type("AWS::SQS::Queue")


def watched_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    if "MetricName" in alarm:
        return [alarm]
    return [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q]


def dead_letter_queues() -> set[str]:
    """Queues something parks failures in: a redrive target, a destination or a schedule's DLQ."""
    found = {
        q["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] for q in QUEUES.values() if "RedrivePolicy" in q
    }
    text = json.dumps(FUNCTIONS)
    found |= {m for m in re.findall(r'"Fn::GetAtt": \["(\w+)", "Arn"\]', text) if m in QUEUES and "DeadLetter" in m}
    return found


def test_every_alarm_notifies_the_one_topic_both_ways() -> None:
    for name, alarm in ALARMS.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["OKActions"] == [{"Ref": "AlarmTopic"}], name  # so the e-mail also says when it is over
        assert len(described(alarm)) > 40, name  # says what happened and what to do


def described(alarm: dict[str, Any]) -> str:
    """An alarm's description as CloudWatch shows it (the functions' alarms write theirs with Fn::Sub)."""
    description = alarm["AlarmDescription"]
    if isinstance(description, str):
        return description
    text, variables = description["Fn::Sub"]
    for name, value in variables.items():
        text = text.replace(f"${{{name}}}", value)
    assert "${" not in text, text
    return str(text)


def test_alarms_can_publish_to_the_topic_and_it_can_mail_someone() -> None:
    # CloudWatch cannot use the AWS-managed aws/sns key, so a topic under it never receives an alarm.
    assert of_type("AWS::SNS::Topic")["AlarmTopic"].get("KmsMasterKeyId") != "alias/aws/sns"
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail" and subscription["Properties"]["Protocol"] == "email"


@pytest.mark.parametrize("queue", sorted(dead_letter_queues()))
def test_every_dead_letter_queue_has_a_depth_alarm(queue: str) -> None:
    watching = [
        name
        for name, alarm in ALARMS.items()
        for metric in watched_metrics(alarm)
        if metric["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and metric["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    ]
    assert watching, f"no alarm on {queue}'s depth"
    assert ALARMS[watching[0]]["Threshold"] == 1  # one parked message is already worth a look


def test_the_dead_letter_queues_are_the_six_expected() -> None:
    assert dead_letter_queues() == {
        "EventsDeadLetterQueue",
        "OutboundDeadLetterQueue",
        "CallbackDeadLetterQueue",
        "RefresherDeadLetterQueue",
        "ErasureDeadLetterQueue",
        "FanoutDeadLetterQueue",
    }


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_has_an_errors_and_throttles_alarm_and_a_log_group_with_retention(function: str) -> None:
    watched = {
        (m["Namespace"], m["MetricName"])
        for alarm in ALARMS.values()
        for m in watched_metrics(alarm)
        if {"Name": "FunctionName", "Value": {"Ref": function}} in m.get("Dimensions", [])
    }
    assert watched == {("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles")}
    log_group = FUNCTIONS[function]["LoggingConfig"]["LogGroup"]["Ref"]
    assert RESOURCES[log_group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_api_5xx_and_signature_rejections_are_alarmed() -> None:
    api = ALARMS["Api5xxAlarm"]
    assert (api["Namespace"], api["MetricName"]) == ("AWS/ApiGateway", "5xx")
    assert api["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}]
    rejections = ALARMS["SignatureRejectionAlarm"]
    assert (rejections["Namespace"], rejections["MetricName"]) == (NAMESPACE, "SignatureRejected")
    assert rejections["Threshold"] == {"Ref": "SignatureRejectionAlarmThreshold"}


def substituted_dashboard() -> dict[str, Any]:
    """The dashboard body as CloudFormation would write it (Fn::ToJsonString), each reference replaced by
    "<name>-value" once the template is known to have what it names."""

    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and "Ref" in value:
            name = value["Ref"]
            assert name.startswith("AWS::") or name in RESOURCES, f"the dashboard names {name}, which is not here"
            return "us-east-1" if name.startswith("AWS::") else f"{name}-value"
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            assert logical_id in RESOURCES, f"the dashboard names {logical_id}, which the template does not have"
            return f"{logical_id}.{attribute}-value"
        if isinstance(value, dict):
            assert not any(key.startswith("Fn::") for key in value), value
            return {key: resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [resolve(item) for item in value]
        return value

    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::ToJsonString"]
    document: dict[str, Any] = json.loads(json.dumps(resolve(body)))
    return document


def test_the_dashboard_is_valid_json_and_shows_every_alarm() -> None:
    widgets = substituted_dashboard()["widgets"]
    [alarm_widget] = [w for w in widgets if w["type"] == "alarm"]
    assert {a.removesuffix(".Arn-value") for a in alarm_widget["properties"]["alarms"]} == set(ALARMS)
    for widget in widgets:  # CloudWatch refuses a widget outside the 24-column grid
        assert widget["x"] + widget["width"] <= 24


def gateway_metric_names() -> set[str]:
    """Metrics of our own namespace that an alarm or the dashboard watches."""
    names = {
        m["MetricName"] for alarm in ALARMS.values() for m in watched_metrics(alarm) if m["Namespace"] == NAMESPACE
    }
    for widget in substituted_dashboard()["widgets"]:
        for line in widget["properties"].get("metrics", []):
            if isinstance(line, dict):  # a SEARCH expression: each dimension value its own line
                names.update(re.findall(r'MetricName="(\w+)"', line["expression"]))
            elif line[0] == NAMESPACE:
                names.add(line[1])
    return names


def test_every_watched_metric_is_one_the_code_emits() -> None:
    source = "\n".join(
        p.read_text(encoding="utf-8")
        for folder in ("functions", "layers/shared/igdm")
        for p in (ROOT / folder).rglob("*.py")
    )
    watched = gateway_metric_names()
    assert len(watched) > 25
    missing = sorted(name for name in watched if f'"{name}"' not in source)
    assert not missing, f"watched but never emitted (a typo, or a metric that was renamed): {missing}"


def test_everything_is_encrypted_at_rest() -> None:
    for name, queue in QUEUES.items():
        assert queue.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue, name
    for name, table in of_type("AWS::DynamoDB::Table").items():
        assert table["SSESpecification"]["SSEEnabled"] is True, name
    # Secrets Manager always encrypts (aws/secretsmanager unless a key is named); no secret may opt out.
    for name, secret in of_type("AWS::SecretsManager::Secret").items():
        assert secret.get("KmsKeyId") in (None, ""), name
    # CloudWatch Logs encrypts every log group; each is also kept only as long as LogRetentionDays says.
    for name, log_group in of_type("AWS::Logs::LogGroup").items():
        assert "KmsKeyId" not in log_group and log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def test_the_api_is_throttled_and_its_access_log_carries_no_query_string() -> None:
    api = of_type("AWS::Serverless::HttpApi")["HttpApi"]
    assert api["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    log_format = api["AccessLogSettings"]["Format"]
    json.loads(log_format)  # one JSON object per line, for Logs Insights
    # The handshake's query string has the verify token, the OAuth callback's has the code.
    for leaky in ("$context.path", "querystring", "$context.requestOverride", "$input"):
        assert leaky not in log_format
    onboarding_routes = FUNCTIONS["OnboardingFunction"]["Events"].values()
    assert all(e["Properties"]["RouteSettings"]["ThrottlingRateLimit"] <= 5 for e in onboarding_routes)


def test_the_webhook_body_limit_is_below_lambdas_payload_limit() -> None:
    limit = TEMPLATE["Parameters"]["MaxWebhookBodyBytes"]
    assert limit["MaxValue"] <= 6 * 1024 * 1024 * 3 // 4  # base64 grows a body by a third
    assert FUNCTIONS["WebhookFunction"]["Environment"]["Variables"]["MAX_BODY_BYTES"] == {"Ref": "MaxWebhookBodyBytes"}


@pytest.mark.parametrize(
    "url",
    [
        "http://graph.instagram.com",
        "http://graph.facebook.com",
        "http://127.0.0.1:8081",
        "HTTP://graph.instagram.com",
        "ftp://graph.instagram.com",
        "https://",
        "https://graph.instagram.com/",
        "https://graph.instagram.com\n",
    ],
)
def test_the_graph_api_base_url_parameter_refuses_anything_but_https(url: str) -> None:
    # CloudFormation matches AllowedPattern against the whole value, as fullmatch does.
    parameter = TEMPLATE["Parameters"]["GraphApiBaseUrl"]
    assert re.fullmatch(parameter["AllowedPattern"], url) is None


@pytest.mark.parametrize(
    "url", ["https://graph.instagram.com", "https://graph.facebook.com", "https://graph.example.com:8443/proxy"]
)
def test_the_graph_api_base_url_parameter_accepts_https_hosts(url: str) -> None:
    parameter = TEMPLATE["Parameters"]["GraphApiBaseUrl"]
    assert re.fullmatch(parameter["AllowedPattern"], url)
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])


def test_every_url_a_token_goes_to_is_https_and_no_function_is_marked_local() -> None:
    environments = [("Globals", TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])]
    environments += [(name, f.get("Environment", {}).get("Variables", {})) for name, f in FUNCTIONS.items()]
    urls = 0
    for name, variables in environments:
        # The local stack's switches (http to loopback Graph URLs, local callback targets) are never deployed.
        assert not {"LOCAL_STACK", "ALLOW_LOCAL_CALLBACKS"} & variables.keys(), name
        for variable in ("GRAPH_API_BASE_URL", "INSTAGRAM_TOKEN_URL", "INSTAGRAM_AUTHORIZE_URL"):
            if variable in variables:
                urls += 1
                value = variables[variable]
                assert value == {"Ref": "GraphApiBaseUrl"} or value.startswith("https://"), (name, variable)
    assert urls >= 5


def iam_statements() -> list[tuple[str, dict[str, Any]]]:
    """The functions' inline statements (SAM Policies) and those of the roles the template declares."""
    found = [
        (name, statement)
        for name, function in FUNCTIONS.items()
        for policy in function.get("Policies", [])
        if isinstance(policy, dict)
        for statement in policy.get("Statement", [])
    ]
    found += [
        (name, statement)
        for name, role in of_type("AWS::IAM::Role").items()
        for policy in role.get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    return found


def test_no_iam_statement_grants_a_wildcard_action_or_resource() -> None:
    statements = iam_statements()
    assert len(statements) >= len(FUNCTIONS)
    for function, statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), (function, actions)
        for resource in statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]:
            assert resource != "*", function
            # Account tokens are created at run time, so their ARNs are known only up to the stack's prefix; the
            # table's one index is named whole.
            if isinstance(resource, dict) and "Fn::Sub" in resource:
                assert (
                    resource["Fn::Sub"].endswith(":secret:${AWS::StackName}/accounts/*")
                    or resource["Fn::Sub"] == "${GatewayTable.Arn}/index/AccountCustomer"
                ), (function, resource)


@pytest.mark.parametrize(
    "function", sorted(f for f, p in FUNCTIONS.items() if any(e["Type"] == "SQS" for e in p.get("Events", {}).values()))
)
def test_a_queue_triggered_function_has_its_own_role_scoped_to_its_queue(function: str) -> None:
    # With SAM Policies, an SQS trigger also brings AWSLambdaSQSQueueExecutionRole: every queue in the account.
    properties = FUNCTIONS[function]
    assert "Policies" not in properties
    role = of_type("AWS::IAM::Role")[properties["Role"]["Fn::GetAtt"][0]]
    assert "ManagedPolicyArns" not in role
    [queue] = [e["Properties"]["Queue"] for e in properties["Events"].values() if e["Type"] == "SQS"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    receive = [s for s in statements if "sqs:ReceiveMessage" in s["Action"]]
    assert [s["Resource"] for s in receive] == [queue]
    log_group = properties["LoggingConfig"]["LogGroup"]["Ref"]
    assert any(s["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]} for s in statements)  # else no logs at all


def test_every_checkov_suppression_says_why() -> None:
    skips = [
        (name, skip)
        for name, resource in RESOURCES.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), name
        assert len(skip.get("comment", "")) > 60, (name, skip["id"])
    # Skips for the whole gateway, in .checkov.yaml: each preceded by the comment that gives its reason, and
    # none repeated in a resource's Metadata.
    config = (ROOT / ".checkov.yaml").read_text(encoding="utf-8")
    everywhere = re.findall(r"((?:\n  # [^\n]*)+)\n  - (CKV_AWS_\d+)\n", config)
    assert len(everywhere) == config.count("  - CKV_"), "a skip-check without the comment that says why"
    for reason, check in everywhere:
        assert len(reason) > 60, check
    assert not {check for _, check in everywhere} & {skip["id"] for _, skip in skips}


SETTINGS = {
    "WebhookFunction": "webhook.settings.WebhookSettings",
    "SenderFunction": "sender.settings.SenderSettings",
    "CallbackFunction": "callback.settings.CallbackSettings",
    "OnboardingFunction": "onboarding.settings.OnboardingSettings",
    "RefresherFunction": "refresher.settings.RefresherSettings",
    "ReconcilerFunction": "reconciler.settings.ReconcilerSettings",
    "EraserFunction": "eraser.settings.EraserSettings",
    "AuthorizerFunction": "authorizer.settings.AuthorizerSettings",
    "ApiFunction": "api.settings.ApiSettings",
    "FanoutFunction": "fanout.settings.FanoutSettings",
}


@pytest.mark.parametrize("function", sorted(SETTINGS))
def test_each_function_is_given_exactly_the_settings_it_reads(function: str) -> None:
    module, _, name = SETTINGS[function].rpartition(".")
    fields = getattr(importlib.import_module(module), name).model_fields
    given = {v.lower() for v in FUNCTIONS[function]["Environment"]["Variables"]}
    assert given - set(fields) == set(), "set on the function, read by nothing"
    required = {field for field, info in fields.items() if info.is_required()}
    assert required - given == set(), "required, and not set by the template"
    assert "local_stack" not in given and "allow_local_callbacks" not in given


def test_only_what_every_function_reads_is_set_for_all_of_them() -> None:
    shared = set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
    assert shared == {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    assert set(FUNCTIONS) == set(SETTINGS)


def test_no_function_reserves_concurrency() -> None:
    # A new AWS account has 10 concurrent executions and Lambda keeps 10 unreserved: a reservation fails the
    # deploy there (docs/security.md, CKV_AWS_115).
    assert [f for f, properties in FUNCTIONS.items() if "ReservedConcurrentExecutions" in properties] == []
