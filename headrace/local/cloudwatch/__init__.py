"""CloudWatch alarm evaluation for the local plane: moto (5.2.5) stores alarms and metrics, never evaluates.

metric_math.py (the expressions), statistics.py (a period's statistic), metrics.py (datapoints into periods),
spec.py and decision.py (an alarm's state and CloudWatch's reason), state_change.py (the event and the SNS
message), evaluator.py (the pass and its thread, over a port that seams/cloudwatch.py implements on moto).

Semantics, and where they knowingly differ from CloudWatch:
- The N most recent periods are evaluated *including the current, still-open period* as soon as it holds
  data (until then, the N most recent closed ones). CloudWatch waits for a period to close; locally a canary
  lasts seconds, and a guardrail that spoke a minute later would never stop a rollout. The price: a partial
  period's Sum or SampleCount is smaller than the final one, so a less-than alarm on them can breach early.
- Periods are aligned to multiples of Period since the epoch.
- M of N and TreatMissingData as decision.py says. CloudWatch's look-back beyond the evaluation range for
  sparse metrics is not modelled.
- Statistics as statistics.py says. Dimensions match exactly (the same set); a Unit on the alarm selects
  datums of that unit.
- Metric math: MetricStat queries as above, on the alarm's period; expressions of + - * / and parentheses
  over query ids and numbers. A missing operand or a division by zero leaves that period missing.
- moto creates alarms in state OK ("Unchecked: Initial alarm creation"); CloudWatch starts them in
  INSUFFICIENT_DATA, and so does this evaluator: such an alarm's first transition comes from there.
- What cannot be evaluated here (anomaly-detection bands, other comparison operators, other statistics, math
  functions) goes to INSUFFICIENT_DATA with a reason that says it is not supported locally.
"""
