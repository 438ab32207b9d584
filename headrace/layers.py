"""AWS-managed Lambda layers, pinned in this one place; the versions match pyproject.toml's pins.

Both publishers keep the layer ARN of each release in a public SSM parameter, so a pin is a library
version rather than a per-region layer number (which differs from region to region).
"""

from __future__ import annotations

LAMBDA_PYTHON_RUNTIME = "python3.12"
LAMBDA_PYTHON_VERSION = tuple(int(part) for part in LAMBDA_PYTHON_RUNTIME.removeprefix("python").split("."))
LAMBDA_ARCHITECTURE = "x86_64"

# pyproject: aws-lambda-powertools[parser]==3.37.0
POWERTOOLS_VERSION = "3.37.0"
# /aws/service/powertools/python/<architecture>/<runtime>/<version>
# (https://docs.powertools.aws.dev/lambda/python/latest/#lambda-layer, "SSM Parameter Store").
POWERTOOLS_LAYER_PARAMETER = (
    f"/aws/service/powertools/python/{LAMBDA_ARCHITECTURE}/{LAMBDA_PYTHON_RUNTIME}/{POWERTOOLS_VERSION}"
)

# AWS SDK for pandas 3.x ships pandas 2.x, numpy 2.x and pyarrow; pyproject pins pandas 2.3.3 to that line.
AWS_SDK_PANDAS_VERSION = "3.14.0"
# /aws/service/aws-sdk-pandas/<version>/py<python version>/<architecture>/layer-arn, with no region: each
# region publishes its own layer's ARN under the same name
# (https://aws-sdk-pandas.readthedocs.io/en/stable/install.html, "AWS Lambda Layer" / "Managed Layer").
AWS_SDK_PANDAS_LAYER_PARAMETER = (
    f"/aws/service/aws-sdk-pandas/{AWS_SDK_PANDAS_VERSION}"
    f"/py{LAMBDA_PYTHON_RUNTIME.removeprefix('python')}/{LAMBDA_ARCHITECTURE}/layer-arn"
)

# The layer's numpy loads OpenBLAS, which starts a thread per vCPU as numpy is imported: with one, numpy's
# import takes half the CPU (66 -> 37 ms, bench/RESULTS.md), and these functions do no linear algebra that
# threads would speed up. OpenBLAS reads the variable when it loads ("Setting the number of threads using
# environment variables": https://github.com/OpenMathLib/OpenBLAS#setting-the-number-of-threads-using-environment-variables).
SDK_FOR_PANDAS_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1"}
