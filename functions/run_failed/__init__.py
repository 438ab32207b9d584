"""The run_failed function's code asset: `handler.handler` is its entry point."""
