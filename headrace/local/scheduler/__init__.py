"""EventBridge Scheduler for the local plane: moto (5.2.5) stores schedules and never fires them.

expressions.py parses rate(), cron() and at(); runner.py fires each ENABLED schedule on its expression, as
Scheduler does, through the target dispatcher (headrace/local/targets.py); seams/scheduler.py reads moto's
schedules (those the provisioner created from the templates, and any created through the API).
"""
