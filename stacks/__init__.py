"""The cloud plane: CDK constructs, one per concern, composed by a stateful and a stateless stack."""
