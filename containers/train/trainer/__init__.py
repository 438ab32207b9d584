"""The training container's code: SageMaker's contract in, an XGBoost model and its evaluation out.

`train` (next to this package) is the entry point; containers/train/CONTRACT.md is the contract.
"""
