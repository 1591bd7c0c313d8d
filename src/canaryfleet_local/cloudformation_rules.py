"""What AWS refuses in a template, refused by the local cloud before moto creates the stack.

moto's CloudFormation creates whatever it is given: it ignores a template's Rules section and
hands an SSM association's properties to a stand-in that stores them. AWS does not, so a template
the local cloud deployed could fail on the day a platform team deploys it. The checks here are
the ones canaryfleet's templates rely on, each with the AWS documentation it comes from:

- **Rules functions.** Rule conditions and assertions take only the rule-specific intrinsic
  functions (Fn::And, Fn::Contains, Fn::EachMemberEquals, Fn::EachMemberIn, Fn::Equals, Fn::Not,
  Fn::Or, Fn::RefAll, Fn::ValueOf, Fn::ValueOfAll, and Ref), and a stack is not created when an
  assertion is false. Source: "Rule functions", AWS CloudFormation Template Reference,
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-rules.html
- **SSM association parameters** (AWS::SSM::Association is created with CreateAssociation):
  ``ApplyOnlyAtCronInterval`` "isn't supported for rate expressions" (CreateAssociation's
  documentation in botocore's ssm model, 2014-11-06); a ``ScheduleExpression`` is a cron, rate or
  at() expression and ``ScheduleOffset`` applies to cron expressions only, with
  ApplyOnlyAtCronInterval; an association's cron runs every 1/2, 1, 2, 4, 8 or 12 hours or at a
  specific time, names no month and has a Seconds field of 0 if any, and its rate is 30 minutes
  to under 31 days ("Reference: Cron and rate expressions for Systems Manager",
  https://docs.aws.amazon.com/systems-manager/latest/userguide/reference-cron-and-rate-expressions.html);
  and the length, pattern and count limits botocore's ssm model gives the CreateAssociation members
  the fleet sets (AssociationName, Name, ScheduleExpression, MaxConcurrency, MaxErrors, Targets).

- **Where the template comes from** (CreateStack's ``TemplateBody`` or ``TemplateURL``, botocore's
  cloudformation model, 2010-05-15, and "Understand CloudFormation quotas",
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html):
  exactly one of the two ("You must specify either TemplateBody or TemplateURL, but not both");
  a body in the request of at most 51,200 bytes ("Template body size in a request"); a URL that
  "must start with https://" and point to an object in an S3 bucket, of at most 1 MB ("Template
  body size in an Amazon S3 object"; 1,048,576 bytes, as the URL's member documentation says
  "max size: 1 MB"). moto takes a body of any size and reads any URL it can parse, so a template
  that grew past 51,200 bytes deployed here and would fail at the first `aws cloudformation
  deploy` without ``--s3-bucket``. The rules above are checked on the template wherever it came
  from, once it parses as one (else "Template format error"). AWS also takes a Systems Manager
  document's URL; the local cloud reads S3 only, and says so with its own error, not one of
  AWS's.

- **Parameter values** ("Parameters section syntax reference for CloudFormation templates",
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html):
  each value, given or default, meets its AllowedPattern, AllowedValues, MinLength, MaxLength,
  MinValue and MaxValue (a CommaDelimitedList member by member, each "space trimmed"), else
  "Malformed input-Parameter ..." (``parameter_errors``). moto checks none of them and does not
  trim a list's members; the members moto receives are trimmed here.

- **How much a template declares** (the same quotas page): at most 500 resources, 200 outputs
  and 200 parameters. AWS answers "Template format error: Number of resources, 501, is greater
  than maximum allowed, 500" and "Template format error: Outputs count 201 is greater than max
  allowed 200" (the answers as reported with the limits of their day); the parameters' answer
  is written here in the outputs' form. A template's Description is at most 1,024 bytes and a
  parameter's value at most 4,096 bytes (the fleet's RolloutPolicy is the one that could grow);
  those two answers are the local cloud's own wording.

Where the local cloud refuses differs from AWS in one way: AWS rejects a bad Rules section at
CreateStack (ValidationError) but a bad association only when CloudFormation creates that
resource (the stack fails and rolls back). Here both are refused at CreateStack, with
CloudFormation's ValidationError code and a message that names the resource and quotes the
documented rule; in both cases no stack is left.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import botocore.session
import yaml
from botocore.exceptions import ClientError

from canaryfleet_local.parsing import parse_template
from canaryfleet_local.standins.aws_clients import shared_client

RULES_DOC = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-rules.html"
RULE_FUNCTIONS = frozenset(
    {
        "Fn::And",
        "Fn::Contains",
        "Fn::EachMemberEquals",
        "Fn::EachMemberIn",
        "Fn::Equals",
        "Fn::Not",
        "Fn::Or",
        "Fn::RefAll",
        "Fn::ValueOf",
        "Fn::ValueOfAll",
        "Ref",
    }
)
# These read the attributes of AWS resources a parameter names (a VPC's tags, every key pair of
# the account): the local cloud has no such source, so an assertion using them is not evaluated.
_ACCOUNT_LOOKUPS = frozenset({"Fn::RefAll", "Fn::ValueOf", "Fn::ValueOfAll"})
_LIST_PARAMETER = re.compile(r"^(CommaDelimitedList|List<.+>)$")
# botocore's ssm model documents ApplyOnlyAtCronInterval: "This parameter isn't supported for
# rate expressions."
_RATE_EXPRESSION = re.compile(r"^rate\(\s*[1-9][0-9]*\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_SCHEDULE_FORMS = re.compile(r"^(cron\(.+\)|at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\))$")
# The CreateAssociation members the fleet template sets (AWS::SSM::Association property names
# are the API's member names).
_ASSOCIATION_MEMBERS = (
    "AssociationName",
    "Name",
    "ScheduleExpression",
    "MaxConcurrency",
    "MaxErrors",
)


# CreateStack's TemplateBody: "a minimum length of 1 byte and a maximum length of 51,200 bytes"
# (botocore's cloudformation model; the quotas page's "Template body size in a request").
TEMPLATE_BODY_LIMIT = 51_200
# TemplateURL: "The URL must point to a template (max size: 1 MB) that's located in an Amazon S3
# bucket" (botocore's cloudformation model; the quotas page's "Template body size in an Amazon S3
# object"). AWS answers a larger one "Template may not exceed 1048576 bytes in size."
TEMPLATE_OBJECT_LIMIT = 1_048_576
# The S3 endpoints an https TemplateURL names: s3.amazonaws.com, s3.<region>.amazonaws.com and
# the older s3-<region>.amazonaws.com, path-style (bucket first in the path) or virtual-hosted
# (the bucket before them in the host name).
# One optional run of name characters after "s3": nested repetition here would backtrack
# exponentially on a long host name that does not match.
_S3_HOST = re.compile(r"^(?:(?P<bucket>.+)\.)?s3(?:[.-][a-z0-9.-]*)?\.amazonaws\.com(?:\.cn)?$")


class TemplateSourceUnsupportedLocallyError(Exception):
    """A TemplateURL AWS reads (a Systems Manager document) that the local cloud does not."""


class TemplateRefusedError(Exception):
    """A template AWS would not create a stack from; ``reasons`` says why, one line each."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


# --- Rules ------------------------------------------------------------------------------------
class _NotLocallyEvaluable(Exception):
    """An assertion reads AWS resources (Fn::ValueOf ...), which the local cloud cannot."""


def rule_function_errors(template: Mapping[str, Any]) -> list[str]:
    """Each function a rule uses that CloudFormation does not accept in Rules."""
    errors: list[str] = []
    for name, rule in template.get("Rules", {}).items():
        expressions = [rule.get("RuleCondition")] + [a.get("Assert") for a in rule.get("Assertions", [])]
        for function in sorted({f for e in expressions for f in _functions_in(e)} - RULE_FUNCTIONS):
            errors.append(
                f"Template format error: rule {name} uses {function}, which is not a rule-specific "
                f"intrinsic function (Rules accept {', '.join(sorted(RULE_FUNCTIONS))}; {RULES_DOC})"
            )
    return errors


def _functions_in(expression: Any) -> set[str]:
    if isinstance(expression, list):
        return {f for item in expression for f in _functions_in(item)}
    if not isinstance(expression, dict):
        return set()
    found = {k for k in expression if k == "Ref" or k.startswith("Fn::") or k == "Condition"}
    return found | {f for value in expression.values() for f in _functions_in(value)}


def parameter_values(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str | list[str]]:
    """Each parameter's value as CloudFormation sees it: given or default; lists split on commas."""
    values: dict[str, str | list[str]] = {}
    for name, spec in template.get("Parameters", {}).items():
        raw = _raw_value(name, spec, given)
        if raw is None:
            continue
        kind = str(spec.get("Type", ""))
        if kind == "CommaDelimitedList":
            values[name] = list_members(raw)
        else:
            values[name] = raw.split(",") if _LIST_PARAMETER.match(kind) else raw
    return values


def _raw_value(name: str, spec: Mapping[str, Any], given: Mapping[str, str]) -> str | None:
    if name in given:
        return given[name]
    return str(spec["Default"]) if "Default" in spec else None


# --- parameter constraints --------------------------------------------------------------------
# "Parameters section syntax reference for CloudFormation templates":
PARAMETERS_DOC = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html"
)
REGEXES_DOC = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cfn-regexes.html"


def list_members(raw: str) -> list[str]:
    """A CommaDelimitedList's members. PARAMETERS_DOC: "An array of literal strings that are
    separated by commas. The total number of strings should be one more than the total number of
    commas. Also, each member string is space trimmed." (moto splits without trimming.)"""
    return [member.strip(" ") for member in raw.split(",")]


def parameter_errors(template: Mapping[str, Any], given: Mapping[str, str]) -> list[str]:
    """Each parameter value (given, else the default) that breaks its declared constraints.

    A default is held to them too: "If you define constraints for the parameter, you must specify
    a value that adheres to those constraints" (PARAMETERS_DOC, Default).

    PARAMETERS_DOC, the parameter properties: AllowedPattern "must match the entire parameter
    value" of a String and "each value in the list" of a CommaDelimitedList; AllowedValues, the
    same way; MinLength and MaxLength for a String; MinValue and MaxValue for a Number. AWS answers
    a pattern it does not match with "Malformed input-Parameter MyParameter must match pattern
    [A-Za-z0-9]+", or with the parameter's ConstraintDescription in place of "must match pattern
    ..." (ConstraintDescription, same page). The other answers are the local cloud's own wording,
    also ended by the ConstraintDescription where the template gives one. moto checks none of them.
    """
    errors: list[str] = []
    for name, spec in template.get("Parameters", {}).items():
        raw = _raw_value(name, spec, given)
        if raw is None:
            continue
        kind = str(spec.get("Type", "String"))
        members = list_members(raw) if kind == "CommaDelimitedList" else [raw]
        said = spec.get("ConstraintDescription")
        problem = _constraint_problem(kind, spec, members)
        if problem is not None:
            errors.append(f"Malformed input-Parameter {name} {said or problem}")
    return errors


def _constraint_problem(kind: str, spec: Mapping[str, Any], members: list[str]) -> str | None:
    """What the first broken constraint says (one reason per parameter)."""
    checks = (_pattern_problem, _allowed_values_problem, _length_problem, _number_problem)
    return next((problem for check in checks if (problem := check(kind, spec, members))), None)


def _pattern_problem(kind: str, spec: Mapping[str, Any], members: list[str]) -> str | None:
    """AllowedPattern read as CloudFormation reads it where the two dialects differ for the
    platform's patterns: "All regular expressions in CloudFormation conform to the Java regex
    syntax" (REGEXES_DOC), and java.util.regex.Pattern's predefined classes \\s, \\d and \\w are
    ASCII unless a pattern asks for UNICODE_CHARACTER_CLASS, as Python's are with ``re.ASCII``: a
    no-break space is not \\s on AWS. Not played: Java's ``.`` and ``$`` also treat \\r, \\x85,
    \\u2028 and \\u2029 as line ends (Python only \\n), so a RolloutPolicy holding one is taken here
    and refused on AWS; and \\b, which Java read as Unicode before Java 19 (no platform pattern
    has it).
    """
    pattern = spec.get("AllowedPattern")
    if pattern is None or kind not in ("String", "CommaDelimitedList"):
        return None
    if all(re.fullmatch(str(pattern), member, flags=re.ASCII) is not None for member in members):
        return None
    return f"must match pattern {pattern}"


def _allowed_values_problem(kind: str, spec: Mapping[str, Any], members: list[str]) -> str | None:
    allowed = [str(value) for value in spec.get("AllowedValues") or []]
    if not allowed or all(member in allowed for member in members):
        return None
    return f"must be one of AllowedValues {allowed}"


def _length_problem(kind: str, spec: Mapping[str, Any], members: list[str]) -> str | None:
    if kind != "String":
        return None
    (value,) = members
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"must contain at least {int(spec['MinLength'])} characters"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"must contain at most {int(spec['MaxLength'])} characters"
    return None


def _number_problem(kind: str, spec: Mapping[str, Any], members: list[str]) -> str | None:
    if kind != "Number":
        return None
    (value,) = members
    try:
        number = float(value)
    except ValueError:
        return "must be a number"
    if "MinValue" in spec and number < float(spec["MinValue"]):
        return f"must be at least {spec['MinValue']}"
    if "MaxValue" in spec and number > float(spec["MaxValue"]):
        return f"must be at most {spec['MaxValue']}"
    return None


def failed_assertions(template: Mapping[str, Any], given: Mapping[str, str]) -> list[str]:
    """The AssertDescription of each assertion that is false for these parameter values.

    A rule whose RuleCondition is false is not checked, as in CloudFormation.
    """
    values = parameter_values(template, given)
    failed: list[str] = []
    for name, rule in template.get("Rules", {}).items():
        try:
            if "RuleCondition" in rule and not _evaluate(rule["RuleCondition"], values):
                continue
            for assertion in rule.get("Assertions", []):
                if not _evaluate(assertion["Assert"], values):
                    failed.append(assertion.get("AssertDescription", f"rule {name} failed"))
        except _NotLocallyEvaluable:
            continue
    return failed


def _evaluate(expression: Any, values: Mapping[str, str | list[str]]) -> Any:
    if isinstance(expression, list):
        return [_evaluate(item, values) for item in expression]
    if not isinstance(expression, dict) or len(expression) != 1:
        return expression
    ((function, argument),) = expression.items()
    if function in _ACCOUNT_LOOKUPS:
        raise _NotLocallyEvaluable(function)
    if function == "Ref":
        if argument not in values:
            raise _NotLocallyEvaluable(f"Ref {argument}")
        return values[argument]
    args = _evaluate(argument, values)
    operations: dict[str, Callable[[list[Any]], bool]] = {
        "Fn::And": all,
        "Fn::Or": any,
        "Fn::Not": lambda a: not a[0],
        "Fn::Equals": lambda a: a[0] == a[1],
        "Fn::Contains": lambda a: a[1] in a[0],
        "Fn::EachMemberEquals": lambda a: all(member == a[1] for member in a[0]),
        "Fn::EachMemberIn": lambda a: all(member in a[1] for member in a[0]),
    }
    if function not in operations:
        return expression  # not a rule function: rule_function_errors has reported it
    return operations[function](args)


# --- SSM associations -------------------------------------------------------------------------
@functools.cache
def _create_association_shapes() -> dict[str, dict[str, Any]]:
    """CreateAssociation's request members as botocore's ssm model describes them."""
    model = botocore.session.get_session().get_service_model("ssm")
    shape = model.operation_model("CreateAssociation").input_shape
    assert shape is not None, "CreateAssociation takes a request"
    members = shape.members
    return {name: dict(shape.metadata) | {"type": shape.type_name} for name, shape in members.items()}


def association_errors(
    logical_id: str, properties: Mapping[str, Any], values: Mapping[str, str | list[str]]
) -> list[str]:
    """What CreateAssociation would refuse in an AWS::SSM::Association's properties."""
    where = f"{logical_id} (AWS::SSM::Association)"
    errors: list[str] = []
    schedule = _literal(properties.get("ScheduleExpression"), values)
    if schedule is not None:
        is_rate = bool(_RATE_EXPRESSION.match(schedule))
        if not is_rate and not _SCHEDULE_FORMS.match(schedule):
            errors.append(
                f"{where}: ScheduleExpression {schedule!r} is not a cron(), rate() or at() expression"
            )
        if is_rate and _truthy(properties.get("ApplyOnlyAtCronInterval")):
            errors.append(
                f"{where}: ApplyOnlyAtCronInterval isn't supported for rate expressions "
                f"(ScheduleExpression {schedule!r})"
            )
        if "ScheduleOffset" in properties and not schedule.startswith("cron("):
            errors.append(f"{where}: ScheduleOffset applies to cron expressions only")
        problem = _association_schedule_problem(schedule)
        if problem:
            errors.append(f"{where}: ScheduleExpression {schedule!r}: {problem}")
    if "ScheduleOffset" in properties and not _truthy(properties.get("ApplyOnlyAtCronInterval")):
        errors.append(f"{where}: ScheduleOffset needs ApplyOnlyAtCronInterval")

    shapes = _create_association_shapes()
    for member in _ASSOCIATION_MEMBERS:
        value = _literal(properties.get(member), values)
        if value is not None:
            errors += [f"{where}: {member} {e}" for e in _string_limits(value, shapes[member])]
    targets = properties.get("Targets")
    if isinstance(targets, list):
        if len(targets) > shapes["Targets"].get("max", len(targets)):
            errors.append(f"{where}: Targets has {len(targets)} entries, at most {shapes['Targets']['max']}")
        for target in targets:
            target_values = target.get("Values") if isinstance(target, dict) else None
            if isinstance(target_values, list) and len(target_values) > 50:
                # Target.Values: "the global maximum of 50" (botocore's ssm model, TargetValues max 50).
                errors.append(f"{where}: a target has {len(target_values)} values, at most 50")
    return errors


# "Cron and rate expressions for associations" (Reference: Cron and rate expressions for Systems
# Manager): "Associations support the following cron expressions: every 1/2, 1, 2, 4, 8, or 12
# hours; every day, every week, every nth day, or the last x day of the month at a specific time",
# rate expressions of "intervals of 30 minutes or greater and less than 31 days"; the optional
# Seconds field "can be 0"; "State Manager doesn't currently support specifying months". Its
# examples write the intervals cron(0/30 * * * ? *) and cron(0 0/N * * ? *).
_ASSOCIATION_HOURS = frozenset({"0/1", "0/2", "0/4", "0/8", "0/12"})
_MINUTES_IN = {"minute": 1, "minutes": 1, "hour": 60, "hours": 60, "day": 1440, "days": 1440}


def _association_schedule_problem(schedule: str) -> str:
    """Why State Manager would not take ``schedule`` for an association; "" if it would."""
    if schedule.startswith("rate("):
        amount, unit = schedule[5:-1].split()
        minutes = int(amount) * _MINUTES_IN[unit]
        return "" if 30 <= minutes < 31 * 1440 else "an association's rate is 30 minutes to under 31 days"
    return _association_cron_problem(schedule[5:-1].split()) if schedule.startswith("cron(") else ""


def _association_cron_problem(fields: list[str]) -> str:
    if len(fields) == 7 and fields[0] != "0":
        return "an association's optional Seconds field can only be 0"
    fields = fields[1:] if len(fields) == 7 else fields
    if len(fields) != 6:
        return "a cron expression has six fields (minutes to year), or seven with Seconds first"
    minutes, hours, _, month, _, _ = fields
    if month != "*":
        return "State Manager doesn't support specifying months in an association's cron expression"
    every_half_hour = minutes == "0/30" and hours == "*"
    every_n_hours = minutes.isdigit() and hours in _ASSOCIATION_HOURS
    at_a_time = minutes.isdigit() and hours.isdigit()
    if every_half_hour or every_n_hours or at_a_time:
        return ""
    return (
        "associations take cron expressions every 1/2, 1, 2, 4, 8 or 12 hours "
        "(cron(0/30 * * * ? *), cron(0 0/N * * ? *)) or at a specific time"
    )


def _string_limits(value: str, shape: Mapping[str, Any]) -> list[str]:
    errors = []
    if len(value) < shape.get("min", 0) or len(value) > shape.get("max", len(value)):
        errors.append(f"{value!r} must be {shape.get('min', 0)} to {shape['max']} characters")
    pattern = shape.get("pattern")
    if pattern:
        try:
            matches = re.search(pattern, value) is not None
        except re.error:  # a Java-only construct (\p{...}) Python's re cannot read: not checked
            matches = True
        if not matches:
            errors.append(f"{value!r} does not match {pattern}")
    return errors


def _literal(value: Any, values: Mapping[str, str | list[str]]) -> str | None:
    """A string property as deployed: literal, a Ref to a parameter, or a Fn::Sub of parameters."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and list(value) == ["Ref"]:
        resolved = values.get(value["Ref"])
        return resolved if isinstance(resolved, str) else None
    if isinstance(value, dict) and list(value) == ["Fn::Sub"] and isinstance(value["Fn::Sub"], str):
        names = re.findall(r"\$\{([^}!]+)\}", value["Fn::Sub"])
        if not all(isinstance(values.get(n), str) for n in names):
            return None
        return re.sub(r"\$\{([^}!]+)\}", lambda m: str(values[m.group(1)]), value["Fn::Sub"])
    return None


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


# --- the whole template -----------------------------------------------------------------------
# "Understand CloudFormation quotas": Resources 500, Outputs 200, Parameters 200 per template, a
# Description of 1,024 bytes and a parameter value of 4,096 bytes.
MAX_RESOURCES = 500
MAX_OUTPUTS = 200
MAX_PARAMETERS = 200
MAX_DESCRIPTION_BYTES = 1_024
MAX_PARAMETER_VALUE_BYTES = 4_096


def quota_errors(template: Mapping[str, Any], given: Mapping[str, str] | None = None) -> list[str]:
    """Each CloudFormation quota on one template and its parameter values that these are over."""
    errors: list[str] = []
    description = template.get("Description")
    if isinstance(description, str) and len(description.encode()) > MAX_DESCRIPTION_BYTES:
        errors.append(
            f"Template format error: the template's Description is {len(description.encode())} bytes, "
            f"more than the {MAX_DESCRIPTION_BYTES} allowed"
        )
    for name, value in (given or {}).items():
        if len(str(value).encode()) > MAX_PARAMETER_VALUE_BYTES:
            errors.append(
                f"Parameter {name}'s value is {len(str(value).encode())} bytes, more than the "
                f"{MAX_PARAMETER_VALUE_BYTES} a parameter value may have"
            )
    resources = len(template.get("Resources") or {})
    if resources > MAX_RESOURCES:
        errors.append(
            f"Template format error: Number of resources, {resources}, is greater than maximum allowed, "
            f"{MAX_RESOURCES}"
        )
    for section, limit in (("Outputs", MAX_OUTPUTS), ("Parameters", MAX_PARAMETERS)):
        count = len(template.get(section) or {})
        if count > limit:
            errors.append(
                f"Template format error: {section} count {count} is greater than max allowed {limit}"
            )
    return errors


def template_refusals(template: Mapping[str, Any], given: Mapping[str, str]) -> list[str]:
    """Every reason AWS would not create a stack from ``template`` with these parameters."""
    quotas = quota_errors(template, given)
    if quotas:  # CloudFormation stops at the template's format
        return quotas
    reasons = parameter_errors(template, given)
    reasons += rule_function_errors(template)
    if not reasons:  # a rule with a function AWS refuses is not evaluated at all
        reasons += failed_assertions(template, given)
    values = parameter_values(template, given)
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::SSM::Association":
            reasons += association_errors(logical_id, resource.get("Properties", {}), values)
    return reasons


def check_template(template: Mapping[str, Any], given: Mapping[str, str]) -> None:
    """Raise TemplateRefusedError if AWS would not create a stack from ``template``."""
    reasons = template_refusals(template, given)
    if reasons:
        raise TemplateRefusedError(reasons)


# --- where the template comes from ------------------------------------------------------------
ReadObject = Callable[[str, str], bytes]  # (bucket, key) -> the object's bytes; raises ClientError


def template_url_object(url: str) -> tuple[str, str]:
    """The S3 bucket and key an https TemplateURL names; TemplateRefusedError for what AWS refuses."""
    if url.startswith("ssm-doc://"):
        raise TemplateSourceUnsupportedLocallyError(
            f"{url}: AWS reads a template from a Systems Manager document; the local cloud reads S3 only"
        )
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise TemplateRefusedError(["TemplateURL must be a supported URL."])
    host = _S3_HOST.match(parts.hostname or "")
    if host is None:
        raise TemplateRefusedError(["TemplateURL must be an Amazon S3 URL."])
    path = unquote(parts.path).lstrip("/")
    if host.group("bucket"):
        bucket, key = host.group("bucket"), path
    else:
        bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise TemplateRefusedError(["TemplateURL must reference a valid S3 object to which you have access."])
    return bucket, key


def template_text(params: Mapping[str, Any], read_object: ReadObject) -> str:
    """The template a CreateStack request gives, read as CloudFormation reads it, or why AWS refuses it."""
    body, url = params.get("TemplateBody"), params.get("TemplateURL")
    if body is not None and url is not None:
        raise TemplateRefusedError(["You must specify either TemplateBody or TemplateURL, but not both."])
    if body is not None:
        size = len(body.encode())
        if size > TEMPLATE_BODY_LIMIT:
            raise TemplateRefusedError(
                [
                    f"1 validation error detected: Value '[a template body of {size} bytes]' at "
                    "'templateBody' failed to satisfy constraint: Member must have length less than "
                    f"or equal to {TEMPLATE_BODY_LIMIT}"
                ]
            )
        return str(body)
    if url is None:
        raise TemplateRefusedError(["Either Template URL or Template Body must be specified."])
    bucket, key = template_url_object(url)
    try:
        content = read_object(bucket, key)
    except ClientError:
        raise TemplateRefusedError(
            ["TemplateURL must reference a valid S3 object to which you have access."]
        ) from None
    if len(content) > TEMPLATE_OBJECT_LIMIT:
        raise TemplateRefusedError([f"Template may not exceed {TEMPLATE_OBJECT_LIMIT} bytes in size."])
    try:
        return content.decode()
    except UnicodeDecodeError:
        raise TemplateRefusedError(["Template format error: unsupported structure."]) from None


def template_document(text: str) -> dict[str, Any]:
    """The template's text parsed; what CloudFormation answers a text that is not a template."""
    try:
        template = parse_template(text)
    except yaml.YAMLError:
        raise TemplateRefusedError(["Template format error: YAML not well-formed."]) from None
    if not isinstance(template, dict):
        raise TemplateRefusedError(["Template format error: unsupported structure."])
    return template


def refuse_what_cloudformation_refuses(client: Any) -> None:
    """Make a CloudFormation client's CreateStack raise what AWS would answer a refused template.

    Registered on the local cloud's client, so the platform stack and every fleet stack pass
    through it before moto sees them. A TemplateURL's object is read as CloudFormation reads it,
    through S3 in the client's region (the local cloud's shared S3 client, which moto answers).
    """

    def read(bucket: str, key: str) -> bytes:
        s3 = shared_client("s3", client.meta.region_name)
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def before_create_stack(params: dict[str, Any], **_: Any) -> None:
        sources = [params.get("TemplateBody"), params.get("TemplateURL")]
        if any(source is not None and (not isinstance(source, str) or source == "") for source in sources):
            return  # botocore refuses an empty one or a non-string before sending (the model's types)
        given = {
            p["ParameterKey"]: p["ParameterValue"]
            for p in params.get("Parameters", [])
            if isinstance(p, dict) and "ParameterKey" in p and "ParameterValue" in p
        }
        try:
            template = template_document(template_text(params, read))
            check_template(template, given)
        except TemplateRefusedError as refused:
            raise ClientError(
                {"Error": {"Code": "ValidationError", "Message": str(refused)}}, "CreateStack"
            ) from None
        # moto splits a CommaDelimitedList without trimming its members; CloudFormation trims them.
        lists = {
            name
            for name, spec in template.get("Parameters", {}).items()
            if str(spec.get("Type", "")) == "CommaDelimitedList"
        }
        for parameter in params.get("Parameters", []):
            value = parameter.get("ParameterValue") if isinstance(parameter, dict) else None
            if isinstance(value, str) and parameter.get("ParameterKey") in lists:
                parameter["ParameterValue"] = ",".join(list_members(value))

    client.meta.events.register("before-parameter-build.cloudformation.CreateStack", before_create_stack)
