"""Runs the template's functions in this process, the way Lambda would: CodeUri and every layer on
sys.path (as /var/task and /opt/python), the template's environment variables, a Lambda context."""

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from local.aws.apigw import LambdaContext
from local.aws.template import Stack, TemplateError


class FunctionRuntime:
    def __init__(self, stack: Stack, base_environment: dict[str, str]) -> None:
        self._stack = stack
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        environment = dict(base_environment)
        functions = stack.resources("AWS::Serverless::Function")
        for logical_id in functions:
            for key, value in stack.function_environment(logical_id).items():
                # All functions share one process, so they must agree on every variable's value.
                if key in environment and environment[key] != value and key not in base_environment:
                    raise TemplateError(f"{key} differs between functions; the local stack runs them in one process")
                environment.setdefault(key, value)
        os.environ.update(environment)
        for path in [*stack.layer_paths(), *(stack.function_code(f)[0] for f in functions)]:
            if str(path) not in sys.path:
                sys.path.insert(0, str(path))

    def handler(self, logical_id: str) -> Callable[[dict[str, Any], Any], Any]:
        if logical_id not in self._handlers:
            _, handler = self._stack.function_code(logical_id)
            module_name, _, attribute = handler.rpartition(".")
            self._handlers[logical_id] = getattr(importlib.import_module(module_name), attribute)
        return self._handlers[logical_id]

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        properties = self._stack.template["Resources"][logical_id]["Properties"]
        globals_fn = self._stack.template.get("Globals", {}).get("Function", {})
        context = LambdaContext(
            function_name=f"{self._stack.name}-{logical_id}",
            memory_limit_in_mb=int(properties.get("MemorySize", globals_fn.get("MemorySize", 128))),
            timeout_seconds=float(properties.get("Timeout", globals_fn.get("Timeout", 3))),
        )
        return self.handler(logical_id)(event, context)
