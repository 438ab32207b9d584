"""Serving: rolling an approved registry version out to the model's endpoint, and verifying it landed.

    rollout.py   what SageMaker is asked for: Model, EndpointConfig (data capture on), DeploymentConfig
    capture.py   where data capture lands (the variant's name, the prefix): what the checks read
    payloads.py  the deploy state machine's inputs and outputs
    deploy.py    the steps: plan (decide and prepare), verify (the endpoint really runs it), failure
    ports.py     what the steps need from AWS, as Protocols; aws.py implements them with boto3
    client.py    a small typed client for Python callers of an endpoint

Pandas-free: the deploy functions run on the Powertools layer alone.
"""
