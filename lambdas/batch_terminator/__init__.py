"""batch-terminator: terminate AWS Batch jobs by policy or on request.

This package is the Lambda asset. It depends only on what the Lambda runtime (boto3) and the
Powertools for AWS Lambda layer (Powertools, pydantic) provide.
"""
