"""The template reader applies AWS::LanguageExtensions as CloudFormation does, so the local stack, the
tests and make scan see the same resources a deployment gets."""

import json
from pathlib import Path
from typing import Any

import pytest

from local.aws.template import Stack, TemplateError, language_extensions, load, main


def loop(fragment: dict[str, Any], collection: Any = ("Webhook", "Sender")) -> dict[str, Any]:
    return {"Fn::ForEach::Loop": ["Name", list(collection), fragment]}


def test_a_loop_writes_one_resource_per_item_with_the_item_in_keys_subs_and_refs() -> None:
    template = {
        "Mappings": {"Functions": {"Webhook": {"Log": "webhook"}, "Sender": {"Log": "sender"}}},
        "Resources": loop(
            {
                "${Name}LogGroup": {
                    "Type": "AWS::Logs::LogGroup",
                    "Properties": {
                        "LogGroupName": {
                            "Fn::Sub": [
                                "/aws/lambda/${AWS::StackName}-${Log}",
                                {"Log": {"Fn::FindInMap": ["Functions", {"Ref": "Name"}, "Log"]}},
                            ]
                        },
                        "Tags": [{"Key": "function", "Value": {"Ref": "Name"}}],
                        "Target": {"Ref": {"Fn::Sub": "${Name}Function"}},
                    },
                }
            }
        ),
    }

    resources = language_extensions(template)["Resources"]

    assert list(resources) == ["WebhookLogGroup", "SenderLogGroup"]
    sender = resources["SenderLogGroup"]["Properties"]
    assert sender["LogGroupName"] == {"Fn::Sub": ["/aws/lambda/${AWS::StackName}-${Log}", {"Log": "sender"}]}
    assert sender["Tags"] == [{"Key": "function", "Value": "Sender"}]
    assert sender["Target"] == {"Ref": "SenderFunction"}  # a Ref with an intrinsic inside, resolved
    assert "Fn::ForEach::Loop" not in resources


def test_loops_nest_and_ampersand_keeps_only_the_alphanumerics() -> None:
    inner = {"Fn::ForEach::Inner": ["Kind", ["a-1", "b"], {"${Name}&{Kind}": {"Type": "T"}}]}
    resources = language_extensions({"Resources": loop(inner)})["Resources"]
    assert sorted(resources) == ["Sendera1", "Senderb", "Webhooka1", "Webhookb"]


def test_a_loop_over_a_comma_delimited_list_parameter_uses_its_default() -> None:
    template = {
        "Parameters": {"Names": {"Type": "CommaDelimitedList", "Default": "A, B"}},
        "Outputs": loop({"${Name}Out": {"Value": {"Ref": "Name"}}}, collection=[]),
    }
    template["Outputs"]["Fn::ForEach::Loop"][1] = {"Ref": "Names"}
    assert language_extensions(template)["Outputs"] == {"AOut": {"Value": "A"}, "BOut": {"Value": "B"}}


def test_what_the_reader_cannot_expand_fails_loudly() -> None:
    with pytest.raises(TemplateError, match="CommaDelimitedList"):
        language_extensions({"Resources": {"Fn::ForEach::Loop": ["Name", {"Ref": "Nowhere"}, {}]}})
    missing = {"Fn::FindInMap": ["Functions", "Webhook", "Missing"]}
    with pytest.raises(TemplateError, match=r"finds nothing at Functions\.Webhook\.Missing"):
        language_extensions({"Mappings": {"Functions": {"Webhook": {}}}, "Resources": {"R": missing}})


def test_find_in_map_falls_back_to_its_default_value() -> None:
    lookup = {"Fn::FindInMap": ["Functions", "Webhook", "Missing", {"DefaultValue": "fallback"}]}
    template = {"Mappings": {"Functions": {"Webhook": {}}}, "Resources": {"R": {"Properties": {"P": lookup}}}}
    assert language_extensions(template)["Resources"]["R"]["Properties"]["P"] == "fallback"


def test_to_json_string_resolves_the_references_inside_it() -> None:
    stack = Stack(name="gw", template={"Resources": {}})
    stack.refs["Queue"] = "https://queue"
    body = {"Fn::ToJsonString": {"widgets": [{"q": {"Ref": "Queue"}, "region": {"Ref": "AWS::Region"}, "n": 3}]}}
    assert json.loads(stack.resolve(body)) == {"widgets": [{"q": "https://queue", "region": "us-east-1", "n": 3}]}


def test_the_project_template_expands_to_one_log_group_and_one_alarm_per_function(tmp_path: Path) -> None:
    out = tmp_path / "scan" / "template.json"
    assert main([str(out)]) == 0
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(load()))
    resources = written["Resources"]
    functions = sorted(k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function")
    assert len(functions) == 10
    assert not [k for k in resources if k.startswith("Fn::")]
    for function in functions:
        log_group = function.removesuffix("Function") + "LogGroup"
        assert resources[log_group]["Type"] == "AWS::Logs::LogGroup"
        assert resources[function]["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": log_group}
        alarm = resources[function + "ErrorsAlarm"]["Properties"]
        dimensions = [q["MetricStat"]["Metric"]["Dimensions"] for q in alarm["Metrics"] if "MetricStat" in q]
        assert dimensions == [[{"Name": "FunctionName", "Value": {"Ref": function}}]] * 2
