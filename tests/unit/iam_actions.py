"""IAM facts the template's policy tests share."""

from __future__ import annotations

from canaryfleet_local.standins.iam import ACTIONS_WITHOUT_RESOURCE_TYPES

# The only actions a statement may grant on "*". Those without resource-level permissions, for
# which "*" is the narrowest grant there is and the only one IAM takes (the local cloud's IAM
# stand-in holds them and their sources); and cloudwatch:DescribeAlarms, which names alarm*
# but which the two functions that list the fail-fast alarms by name prefix hold on "*": how IAM
# weighs a listing by AlarmNamePrefix against alarm ARNs is not documented (API_DescribeAlarms
# says only that composite alarms need "*").
WITHOUT_RESOURCE_LEVEL = ACTIONS_WITHOUT_RESOURCE_TYPES | {"cloudwatch:DescribeAlarms"}
