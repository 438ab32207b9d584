"""Monitoring: drift checks on captured traffic, and the retraining they (or the quality alarm) start.

capture.py   SageMaker's data-capture JSON lines -> the feature frame the model received
window.py    which captured objects a check reads (since the last check), in batches for the Map
check.py     the drift check's three steps: Window, Partial (one batch), Finish (merge, publish, report)
report.py    the check's HTML report (reference vs current distributions, scores over time)
retrain.py   an alarm episode -> at most one retraining run (cooldown, dedupe, daily cap), every decision kept
aws.py, runtime.py  the drift check's adapters and runtime; retrain_aws.py the retrain function's
"""
