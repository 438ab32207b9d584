"""Facts about SageMaker instance types that change what a training job may ask for."""

from __future__ import annotations

# Families whose instances come with NVMe instance storage although their name has no 'd'
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-store-volumes.html).
_STORAGE_FAMILIES = frozenset(
    {
        "g5",
        "g6",
        "g6e",
        "g7e",
        "p5",
        "p5e",
        "p5en",
        "p6-b200",
        "p6-b300",
        "p6e-gb200",
        "trn1",
        "trn1n",
        "trn2",
    }
)


def family(instance_type: str) -> str:
    """`ml.g4dn.xlarge` -> `g4dn`."""
    return instance_type.split(".")[1]


def has_instance_storage(instance_type: str) -> bool:
    """Whether the instance trains on local NVMe storage instead of an EBS volume.

    SageMaker rejects ResourceConfig.VolumeKmsKeyId for such types ("You can't request a VolumeKmsKeyId when
    using an instance type with local storage", CreateTrainingJob API reference); their local storage is
    encrypted by the instance's hardware. A 'd' after the generation (m5d, c6id, g4dn, p4d, p3dn) marks them,
    and a few GPU/Trainium families have it without the letter.
    """
    name = family(instance_type)
    generation_end = next((i for i, c in enumerate(name) if c.isdigit()), len(name))
    attributes = name[generation_end:].lstrip("0123456789")
    return name in _STORAGE_FAMILIES or "d" in attributes
