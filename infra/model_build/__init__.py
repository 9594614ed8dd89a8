"""What the pipeline's model build step runs: JumpStart resolution and streaming repackaging."""
