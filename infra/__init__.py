"""The AWS CDK app of Diffusion Desk: source, pipeline and endpoint stacks."""
