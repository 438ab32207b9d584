"""Headrace: a serverless MLOps pipeline for AWS that also runs offline on one machine."""

__version__ = "0.1.0"
