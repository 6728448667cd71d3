"""Titus's constraint names and their meaning for the scheduling engine.

Names are case-insensitive, as in Titus. A value of ``"false"`` switches a boolean constraint
off. An unknown name is an error that quotes the name as data: user text is never used as a
template or evaluated (Titus's CVE-2020-9297 came from a constraint name interpolated into a
validation message template).
"""
from __future__ import annotations

from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr

# lower-case name -> canonical Titus spelling
KNOWN = {
    name.lower(): name
    for name in ("uniqueHost", "exclusiveHost", "zoneBalance", "availabilityZone", "machineType",
                 "machineId")
}
BOOLEAN = {"uniquehost", "exclusivehost", "zonebalance"}
# host attribute each value constraint matches
ATTRIBUTE_OF = {"availabilityzone": "zone", "machinetype": "instance_type",
                "machineid": "instance_id"}


def unknown_names(constraints: dict[str, str]) -> list[str]:
    """The names in ``constraints`` that are not Titus constraint names (as given, unchanged)."""
    return [name for name in constraints if name.lower() not in KNOWN]


def is_on(value: str) -> bool:
    """Whether a boolean constraint value switches it on (anything but false/0/empty)."""
    return str(value).strip().lower() not in ("false", "0", "")


def to_engine(constraints: dict[str, str], zone_count: int) -> list:
    """Engine constraint objects for a validated Titus constraint map.

    ``zone_count`` is how many zones the cluster knows (for ``zoneBalance``); at least 1.
    """
    result = []
    for name, value in constraints.items():
        key = name.lower()
        if key in BOOLEAN:
            if not is_on(value):
                continue
            if key == "uniquehost":
                result.append(UniqueHostAttr("hostname"))
            elif key == "exclusivehost":
                result.append(ExclusiveHost())
            else:
                result.append(BalancedHostAttr("zone", max(1, zone_count)))
        elif key in ATTRIBUTE_OF:
            values = [v.strip() for v in str(value).split(",") if v.strip()]
            result.append(HostAttrValue(ATTRIBUTE_OF[key], values=values))
        else:  # validation refuses these before they get here
            raise ValueError("unknown constraint name", name)
    return result
