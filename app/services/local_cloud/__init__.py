"""The local cloud: the whole AWS side of Diffusion Desk on 127.0.0.1, with real HTTP.

    cloud = LocalCloud().start()
    deployment = cloud.provision("sandbox")      # the endpoint stack's template, deployed by CloudFormation
    s3 = cloud.client("s3")                      # or any boto3 client with endpoint_url=cloud.endpoint_url
    ...
    cloud.stop()

moto serves S3, SNS, SSM, STS, SageMaker and the rest; the emulator serves
InvokeEndpointAsync with its queue, instances and notifications; the runner delivers the
notifications to the Lambda handlers. The engine behind the endpoint is the sandbox test
pattern unless another `Engine` is given.
"""

from app.services.local_cloud.cloud import LocalCloud, LocalDeployment
from app.services.local_cloud.engine import SANDBOX_NAME, Engine, SandboxEngine
from app.services.local_cloud.runner import LambdaContext, LambdaFailure, sns_event

__all__ = [
    "SANDBOX_NAME",
    "Engine",
    "LambdaContext",
    "LambdaFailure",
    "LocalCloud",
    "LocalDeployment",
    "SandboxEngine",
    "sns_event",
]
