"""Figure 5: each function's peak memory in the runs above, against a memory floor and the function's
configured MemorySize (template.yaml; the Globals' 512 MB unless the function sets its own).

Lambda reports "Max Memory Used", the peak resident memory of the execution environment. Each workload
runs in a process of its own that reads its own peak resident set (VmHWM, bench.lambda_child) at the end.
"""

from bench.common import SHORT_NAMES, Figure, functions, memory_size_mb, template
from bench.instance import WORKLOADS, InstanceRun
from bench.webhook import EVENTS_PER_POST, SINGLE_POSTS, WebhookRun

METHOD = (
    "Lambda's \"Max Memory Used\" is the peak resident memory of the execution environment. Each function's "
    "workload runs in a process of its own, which reads its own peak resident set (`VmHWM` in "
    "`/proc/self/status`; not `getrusage`, whose `ru_maxrss` Linux carries over from the parent across the "
    "exec) when it is done: the webhook's is figure 2's process, the others' are one instance each of the "
    "sender (text messages in batches of 10, through moto and the Graph sandbox), the callback function "
    "(callbacks to a local receiver), the onboarding pages (complete logins through the sandbox's "
    "consent page) and the refresher (runs that renew and check tokens). The floor is a fresh interpreter "
    "that imported boto3 and created the same clients (figure 1's floor processes). Target: the peak fits "
    "in the function's MemorySize. Lambda's runtime client adds a few MB that a bare interpreter does not "
    "hold."
)


def figures(webhook: WebhookRun, instances: dict[str, InstanceRun], floors: dict[str, float]) -> list[Figure]:
    found: list[Figure] = []
    for logical_id in functions():
        memory = memory_size_mb(logical_id)
        if logical_id == "WebhookFunction":
            peak = webhook.peak_rss_mb
            workload = f"{EVENTS_PER_POST}-event POSTs, then {SINGLE_POSTS} one-event POSTs (AWS stubbed)"
        else:
            peak = instances[logical_id].peak_rss_mb
            workload = f"{WORKLOADS[logical_id]}, against moto and the Graph sandbox"
        own = "MemorySize" in template()["Resources"][logical_id]["Properties"]
        found.append(
            Figure(
                f"memory_{SHORT_NAMES[logical_id]}",
                f"Peak memory: {SHORT_NAMES[logical_id]}",
                peak,
                floors[logical_id],
                "MB",
                f"<= {memory} MB (MemorySize{'' if own else ', Globals'})",
                peak <= memory,
                target_value=float(memory),
                method=METHOD if not found else "",
                details=[f"{peak / memory:.0%} of its {memory} MB; workload: {workload}"],
            )
        )
    return found
