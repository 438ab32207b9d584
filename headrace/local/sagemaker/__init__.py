"""SageMaker's compute on the local plane, which moto only records: training jobs and endpoint hosting.

- containers.py: the images (the staged directories `cdk synth` built them from), SageMaker's container
  contract (`train` / `serve` as a process over a private `/opt/ml`), and the container log writer.
- records.py: what this compute reads and updates of SageMaker's records (moto's, through seams/sagemaker.py).
- training.py: CreateTrainingJob's process, from the input channels to the model artifact.
- fleets.py: one production variant as a serve process, and an endpoint's routing between its fleets.
- hosting.py: CreateEndpoint / UpdateEndpoint / DeleteEndpoint / InvokeEndpoint over those fleets.
- rollout.py: a blue/green UpdateEndpoint: traffic steps, the bake, and the rollback on an alarm.
- telemetry.py: the `AWS/SageMaker` invocation metrics and the data capture an endpoint config asks for.
- transform.py: CreateTransformJob's run: the serve container as transform instances (transform_instances.py),
  objects cut into mini-batches and answers joined as SageMaker does (transform_records.py).
"""
