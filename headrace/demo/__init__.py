"""`headrace demo`: the whole loop told as a story on the local plane, checked at every step.

models.py    the demo's own model configs (the shipped churn.yaml with rollouts of seconds)
record.py    what the demo saw: steps, versions, drift checks, rollouts
progress.py  the live display, and running a step so that a step that does not happen fails by name
plane.py     the demo's window on its local plane: what it puts there and reads back
traffic.py   a client calling the endpoint while a rollout goes on, and the new fleet's share sampled
story.py     the steps, from the plane coming up to the broken v3 rolled back, each checked
summary.py   the summary's rows (printed by the CLI, repeated in the report)
charts.py    small inline SVG charts
report.py    the HTML report
"""
