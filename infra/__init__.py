"""The batch-terminator stack: AWS CDK constructs, settings and the Lambda asset build."""
