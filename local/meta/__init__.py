"""Meta, emulated: the Graph API sandbox on 127.0.0.1 (graph_sandbox: the server, the Send API, the control
endpoints), the Send API's body rules (send_validation), its answers and error object (answers), the failures
it produces on purpose (faults), the webhooks it sends back (webhooks) and Instagram Business Login (login)."""
