"""In-memory stand-ins for the functions' ports, one module per port family (tests/unit/<function>/ uses them).
The webhook's are in local/harnesses/webhook_in_memory.py, since the chaos fuzzer drives the service on them too."""
