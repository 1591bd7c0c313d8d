"""The local cloud: moto, the stand-ins for what moto lacks, and the jobs played on it."""

from canaryfleet_local.botocore_data import import_moto_ec2_models

# Before any module of the package imports moto's services (most of them reach EC2's models).
import_moto_ec2_models()
