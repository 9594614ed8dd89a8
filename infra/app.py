"""Builds the Diffusion Desk CDK app in-process: `python -m infra.app [outdir]` synthesizes it."""

from __future__ import annotations

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import Config, load_config
from infra.endpoint_stack import EndpointStack
from infra.pipeline_stack import PipelineStack
from infra.source_stack import SourceStack

#: CDK feature flags this app relies on (the CLI's cdk.json would carry them otherwise).
FEATURE_FLAGS = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


class EndpointStage(cdk.Stage):
    """The stage that the pipeline deploys: the endpoint stack alone, checked by cdk-nag."""

    def __init__(self, scope, construct_id: str, *, config: Config, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.stack = EndpointStack(self, "Endpoint", config=config, stack_name=config.stack_name("endpoint"))
        cdk.Validations.of(self).add_plugins(AwsSolutionsChecks(self, write_suppressions_to_cloud_formation=True))


def build_app(config: Config | None = None, **app_options) -> cdk.App:
    """The app with its source and pipeline stacks (the endpoint stack lives in the pipeline's stage)."""
    config = config or load_config()
    context = {**FEATURE_FLAGS, **app_options.pop("context", {})}
    app = cdk.App(context=context, **app_options)
    source = SourceStack(app, "Source", config=config, stack_name=config.stack_name("source"))
    PipelineStack(
        app,
        "Pipeline",
        config=config,
        source=source,
        stage=lambda scope: EndpointStage(scope, "Deploy", config=config),
        stack_name=config.stack_name("pipeline"),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    return app


def main(argv: list[str]) -> None:
    outdir = argv[1] if len(argv) > 1 else None
    build_app(outdir=outdir).synth()


if __name__ == "__main__":
    main(sys.argv)
