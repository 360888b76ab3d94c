"""AWS, emulated: the template's reader (template: resources, environment, routes, queue subscriptions,
provisioned into moto), the Lambda runtime that runs the functions in this process (runtime), API Gateway's
events (apigw), Lambda's SQS event source mapping (sqs_poller) and where moto is made to behave like AWS
(emulator_fixes)."""
