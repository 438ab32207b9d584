"""Batch scoring: a file dropped under `<model>/batch/incoming/` (validated by headrace.ingest.batch) is
scored by a SageMaker transform job with the serving (or a named approved) version's Model.

layout.py    the S3 keys of a batch: drops, the validated input SageMaker reads, the output it writes
payloads.py  the batch state machine's input and each step's payloads
resolve.py   which Model scores it, the transform job's name, the ledger's InProgress item
record.py    how the job ended: ledger, event, metrics
ports.py     what those steps need from AWS; aws.py implements them, runtime.py wires them per function
"""
