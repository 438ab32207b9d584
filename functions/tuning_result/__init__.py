"""The tuning_result function's code asset: `handler.handler` is its entry point."""
