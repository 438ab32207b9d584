"""Application Auto Scaling on the local plane: target-tracking policies on SageMaker variants, evaluated
from the endpoint's own AWS/SageMaker Invocations (policy.py), applied by changing the variant's instance
count as UpdateEndpointWeightsAndCapacities does (evaluator.py), recorded as scaling activities."""
