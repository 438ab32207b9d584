"""The shared ports (headrace.ports) implemented with boto3 and Powertools, and the one way every domain
builds a client. Nothing here runs at import, and nothing imports pandas: the pandas-free functions use it.

    clients.py      one botocore Config (standard retries), `client(service, session)`
    clock.py        `now`, in UTC
    s3.py           S3Store: read, put, exists, list
    events.py       EventBridgePublisher: our own events on the deployment's bus
    metrics.py      PowertoolsMetrics: operational counters in EMF
    idempotency.py  IdempotentOnce on Powertools idempotency, records in the ledger table
    errors.py       which ClientError codes mean "not there" or "already there"
"""
