"""Every stand-in for an AWS behaviour that moto lacks, one module per AWS service.

Each class is named after the AWS behaviour it replaces and says which moto gap it fills.
Nothing outside this package patches moto. The stand-ins are installed by
:class:`canaryfleet_local.cloud.LocalCloud` for the life of one local cloud and removed
after it, in the order :mod:`canaryfleet_local.standins.install` gives.

- :mod:`.lambda_`: Invoke runs the real handler in-process, each function in its own execution
  environment (:mod:`.lambda_environment`: its own variables); :mod:`.lambda_async`: the
  asynchronous invocation queue and dead-letter queues; :mod:`.iam`: each function under its
  own role, with IAM checking its calls
- :mod:`.eventbridge`: rule targets (Lambda, Step Functions) and the events services emit
- :mod:`.s3`, :mod:`.sqs_sns`, :mod:`.dynamodb`, :mod:`.stepfunctions`, :mod:`.codedeploy`,
  :mod:`.cloudwatch`, :mod:`.elbv2`, :mod:`.autoscaling`, :mod:`.ec2`, :mod:`.ssm`,
  :mod:`.secretsmanager`, :mod:`.apigateway`: each service's gaps, its CloudFormation resource
  types included
- :mod:`.cloudformation`: what moto's CloudFormation leaves out of any stack
- :mod:`.aws_clients`: not AWS: the local cloud's own boto3 clients, one per service for the
  whole process
"""
