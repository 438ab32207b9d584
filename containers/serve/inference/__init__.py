"""The inference container's code: SageMaker runs `docker run <image> serve` (see CONTRACT.md there)."""
