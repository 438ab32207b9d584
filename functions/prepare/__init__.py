"""The prepare function's code asset: `handler.handler` is its entry point."""
