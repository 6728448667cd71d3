"""EC2 provider: one Auto Scaling group per instance group, through boto3.

- grow: ``set_desired_capacity`` (desired + count, not honouring the ASG's own cooldown: the
  autoscaler keeps its own);
- shrink: ``terminate_instance_in_auto_scaling_group`` with ``ShouldDecrementDesiredCapacity``
  for exactly the hosts the autoscaler chose, mapped to instances by the ``instance_id``
  attribute their agents report (an instance not in the group's ASG is never terminated);
- instance types: ``describe_instance_types`` gives cpus, memory, GPUs, local disk and network;
- ``endpoint_url`` and ``region`` are configurable (moto's server in tests, a VPC endpoint, ...);
- bounds: MaxSize is never set below the desired capacity (the ASG would pick instances to
  terminate, busy ones included); :meth:`Ec2Provider.settle_bounds` lowers it once the
  autoscaler has drained the idle hosts beyond it;
- instances that never join are terminated by id (:meth:`Ec2Provider.terminate_instances`);
  a missing ASG raises :class:`GroupMissing` from every call, which the autoscaler reports
  for that group alone.

An ASG is named ``<prefix><group name>``; :meth:`Ec2Provider.ensure_group` creates it (with a
launch template of the group's instance type and ``image_id``) or updates its size bounds.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

import boto3
from botocore.exceptions import ClientError

from titus.autoscale.groups import InstanceGroup, InstanceType
from titus.autoscale.hostview import HostView

_GIGABIT = re.compile(r"(\d+(?:\.\d+)?)\s*Gigabit", re.IGNORECASE)
_NAMED_SPEEDS = {"very low": 50, "low": 100, "low to moderate": 300, "moderate": 500, "high": 1000}


class GroupMissing(KeyError):
    """The instance group's Auto Scaling group does not exist (deleted out of band)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Ec2Provider:
    """Scales Auto Scaling groups (see the module docstring)."""

    def __init__(self, region: Optional[str] = None, endpoint_url: Optional[str] = None,
                 image_id: Optional[str] = None, prefix: str = "titus-",
                 user_data: str = "", session: Optional[boto3.session.Session] = None, **client_kwargs):
        session = session or boto3.session.Session()
        kwargs = {"region_name": region, "endpoint_url": endpoint_url, **client_kwargs}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        self.asg = session.client("autoscaling", **kwargs)
        self.ec2 = session.client("ec2", **kwargs)
        self.image_id = image_id
        self.prefix = prefix
        self.user_data = user_data

    # ------------------------------------------------------------------ names and types
    def asg_name(self, group: InstanceGroup | str) -> str:
        """The Auto Scaling group behind an instance group."""
        return self.prefix + (group if isinstance(group, str) else group.name)

    def instance_type(self, name: str) -> InstanceType:
        """An :class:`InstanceType` with the resources EC2 reports for ``name``."""
        try:
            found = self.ec2.describe_instance_types(InstanceTypes=[name])["InstanceTypes"]
        except ClientError as exc:
            raise ValueError(f"instance_type: {name!r} is not known to EC2 ({exc})") from None
        if not found:
            raise ValueError(f"instance_type: {name!r} is not known to EC2")
        info = found[0]
        gpus = sum(g.get("Count", 0) for g in info.get("GpuInfo", {}).get("Gpus", []))
        disk_gb = info.get("InstanceStorageInfo", {}).get("TotalSizeInGB", 0)
        return InstanceType(
            name=name,
            cpus=info["VCpuInfo"]["DefaultVCpus"],
            memory_mb=info["MemoryInfo"]["SizeInMiB"],
            disk_mb=disk_gb * 1024,
            network_mbps=_network_mbps(info.get("NetworkInfo", {}).get("NetworkPerformance", "")),
            gpu=gpus,
        )

    # ------------------------------------------------------------------ Provider
    def ensure_group(self, group: InstanceGroup) -> None:
        """Create the group's ASG (and launch template), or update its size bounds."""
        name = self.asg_name(group)
        found = self._describe(name)
        if found is not None:
            # Never below the current desired capacity: a lower MaxSize would have the ASG
            # terminate instances of its own choosing, busy ones included. The autoscaler
            # drains idle hosts down to the new bound; settle_bounds lowers MaxSize after.
            self.asg.update_auto_scaling_group(
                AutoScalingGroupName=name, MinSize=min(group.min_size, group.max_size),
                MaxSize=max(group.max_size, int(found["DesiredCapacity"])))
            return
        if not self.image_id:
            raise ValueError(f"image_id: needed to create Auto Scaling group {name!r}")
        template = self._ensure_launch_template(name, group.instance_type.name)
        self.asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
            MinSize=group.min_size, MaxSize=group.max_size, DesiredCapacity=group.min_size,
            AvailabilityZones=list(group.zones),
            Tags=[{"Key": "titus:instance_group", "Value": group.name, "PropagateAtLaunch": True}],
        )

    def desired(self, group: InstanceGroup) -> int:
        """The ASG's desired capacity; :class:`GroupMissing` if the ASG does not exist (it
        was deleted behind our back: the autoscaler reports the group as failing)."""
        return int(self._existing(group)["DesiredCapacity"])

    def settle_bounds(self, group: InstanceGroup) -> None:
        """Lower the ASG's MaxSize to the group's once the desired capacity fits under it
        (:meth:`ensure_group` keeps it at the desired capacity until then)."""
        found = self._existing(group)
        if int(found["MaxSize"]) > group.max_size >= int(found["DesiredCapacity"]):
            self.asg.update_auto_scaling_group(AutoScalingGroupName=self.asg_name(group),
                                               MaxSize=group.max_size)

    def terminate_instances(self, group: InstanceGroup, instance_ids: Sequence[str]) -> None:
        """Terminate instances that never joined (no host stands for them), decrementing the
        desired capacity; an instance not in the group's ASG is refused (ValueError)."""
        members = self.instances(group)
        for iid in instance_ids:
            if iid not in members:
                raise ValueError(f"instance {iid} is not in {self.asg_name(group)!r}")
        for iid in instance_ids:
            self.asg.terminate_instance_in_auto_scaling_group(
                InstanceId=iid, ShouldDecrementDesiredCapacity=True)

    def _existing(self, group: InstanceGroup) -> dict:
        found = self._describe(self.asg_name(group))
        if found is None:
            raise GroupMissing(f"Auto Scaling group {self.asg_name(group)!r} does not exist")
        return found

    def grow(self, group: InstanceGroup, count: int) -> int:
        """Raise the desired capacity by ``count``; returns the new desired capacity."""
        if count < 0:
            raise ValueError(f"count: must be >= 0, got {count}")
        name = self.asg_name(group)
        found = self._existing(group)
        target = int(found["DesiredCapacity"]) + count
        self.asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=target, HonorCooldown=False)
        return target

    def terminate(self, group: InstanceGroup, hosts: Sequence[HostView]) -> None:
        """Terminate the instances behind ``hosts``, decrementing the desired capacity."""
        name = self.asg_name(group)
        ids = []
        for host in hosts:
            if not host.instance_id:
                raise ValueError(f"host {host.id!r}: no instance_id attribute, cannot map it to EC2")
            ids.append(host.instance_id)
        members = self.instances(group)
        for host, instance_id in zip(hosts, ids):
            if instance_id not in members:
                raise ValueError(f"host {host.id!r}: instance {instance_id} is not in {name!r}")
        for instance_id in ids:
            self.asg.terminate_instance_in_auto_scaling_group(
                InstanceId=instance_id, ShouldDecrementDesiredCapacity=True)

    def owned(self, group: InstanceGroup, hosts: Sequence[HostView]) -> set[str]:
        """The hosts among ``hosts`` whose instances are in the group's ASG."""
        members = self.instances(group)
        return {h.id for h in hosts if h.instance_id in members}

    # ------------------------------------------------------------------ inspection
    def instances(self, group: InstanceGroup | str) -> dict[str, str]:
        """Instance id -> availability zone, for the instances of the group's ASG."""
        found = self._describe(self.asg_name(group))
        if not found:
            return {}
        return {i["InstanceId"]: i["AvailabilityZone"] for i in found.get("Instances", [])
                if not i.get("LifecycleState", "").startswith("Terminat")}

    def _describe(self, name: str) -> Optional[dict]:
        groups = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        return groups[0] if groups else None

    def _ensure_launch_template(self, name: str, instance_type: str) -> str:
        try:
            self.ec2.create_launch_template(
                LaunchTemplateName=name,
                LaunchTemplateData={"ImageId": self.image_id, "InstanceType": instance_type,
                                    **({"UserData": self.user_data} if self.user_data else {})},
            )
        except ClientError as exc:
            if "AlreadyExists" not in str(exc):
                raise
        return name


def _network_mbps(performance: str) -> float:
    """EC2's network performance text ("Up to 10 Gigabit", "Moderate") in Mbps."""
    match = _GIGABIT.search(performance or "")
    if match:
        return float(match.group(1)) * 1000
    return float(_NAMED_SPEEDS.get((performance or "").strip().lower(), 0))
