"""The ``titus`` command. Each sub-command lives in its own module of this package."""
import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="titus")
def main():
    """Titus: container management with a compiled scheduling core."""


# Sub-commands register themselves below (one import per module).
from titus.cli import agent as _agent_command  # noqa: E402,F401  titus agent
from titus.cli import bench as _bench_command  # noqa: E402,F401  titus bench
from titus.cli import local as _local_command  # noqa: E402,F401  titus local
from titus.cli import master as _master_command  # noqa: E402,F401  titus master
from titus.cli import jobs as _jobs_command  # noqa: E402,F401  titus job
from titus.cli import tasks as _tasks_command  # noqa: E402,F401  titus task
from titus.cli import describe as _describe_command  # noqa: E402,F401  titus job|task describe
from titus.cli import events as _events_command  # noqa: E402,F401  titus events
from titus.cli import hosts as _hosts_command  # noqa: E402,F401  titus hosts
from titus.cli import capacity as _capacity_command  # noqa: E402,F401  titus capacity-groups
from titus.cli import instance_groups as _instance_groups_command  # noqa: E402,F401  titus instance-groups
from titus.cli import store as _store_command  # noqa: E402,F401  titus store
from titus.cli import token as _token_command  # noqa: E402,F401  titus token
