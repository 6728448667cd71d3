"""Where hosts come from: ``ec2`` (Auto Scaling groups through boto3) and ``local`` (agent processes)."""
from titus.autoscale.providers.base import Provider

__all__ = ["Provider"]
