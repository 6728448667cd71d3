"""The ``titus`` command. Each sub-command lives in its own module of this package."""
import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="titus")
def main():
    """Titus: container management with a compiled scheduling core."""


# Sub-commands register themselves below (one import per module).
