"""Training: one execution of a model's training state machine turns a dataset version into a registered
model version, or a rejected candidate with the gate's reasons, or a failed run with its cause.

Steps (each a Lambda function over one module): `prepare` (dataset -> train/validation/test splits and the
run record), the SageMaker training job (no code here: the state machine calls SageMaker), `evaluate`
(the candidate's evaluation.json against the champion, through `gate`), `register` (a new version in the
Model Registry, with `lineage`), and `run_failed` (what went wrong, recorded and announced).

Shared nouns: `payloads` (the steps' inputs and outputs), `layout` (where a run's files live), `splits`,
`evaluation`, `gate`, `lineage`, `instances` (SageMaker instance facts; the run record is headrace.ledger's),
`ports` (what the steps need) with `aws` (boto3/Powertools adapters), `settings` (each function's env)
and `runtime` (what every handler loads once).

This package imports nothing at import time: the evaluate, register and run_failed functions run without
the AWS SDK for pandas layer, and `prepare` takes only numpy from it (and pyarrow, for a Parquet dataset):
its `table` of text cells reads, splits and writes datasets with the stdlib csv module, not pandas.
"""
