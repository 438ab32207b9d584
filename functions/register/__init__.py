"""The register function's code asset: `handler.handler` is its entry point."""
