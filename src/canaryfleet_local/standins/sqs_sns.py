"""SQS and SNS: subscriptions and queue policies from templates, and Lambda's SQS event source
mappings (batches, partial batch failures, redrive)."""

from __future__ import annotations

import contextlib
import copy
import json
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Self
from unittest import mock
from urllib.parse import quote

from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.models import LambdaBackend
from moto.core.common_models import CloudFormationModel
from moto.core.responses import ActionResult
from moto.core.utils import unix_time_millis
from moto.sns.exceptions import InvalidParameterValue, SNSException, SNSInvalidParameter, SNSNotFoundError
from moto.sns.models import SNSBackend, Subscription, Topic, sns_backends
from moto.sns.responses import SNSResponse
from moto.sqs.models import Queue, sqs_backends

from canaryfleet_local.standins.cloudformation import CloudFormationStandIn
from canaryfleet_local.standins.lambda_ import LambdaInvokeInProcess
from canaryfleet_local.standins.lambda_async import AsyncInvocationQueue


class CloudFormationSnsSubscription(CloudFormationStandIn, CloudFormationModel):
    """Stands in for the ``AWS::SNS::Subscription`` resource, which moto's CloudFormation skips.

    The subscription is made through moto's SNS (which then delivers to it, e.g. an SQS
    queue, in Publish), with the attributes the template sets; Ref is its ARN.
    """

    _ATTRIBUTES = ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy")

    RESOURCE_TYPE = "AWS::SNS::Subscription"

    @classmethod
    def create_resource(cls, name: str, props: dict[str, Any], account_id: str, region: str) -> Self:
        backend = sns_backends[account_id][region]
        subscription = backend.subscribe(props["TopicArn"], props["Endpoint"], props["Protocol"])
        for attribute in cls._ATTRIBUTES:
            if attribute in props:
                value = props[attribute]
                text = json.dumps(value) if isinstance(value, dict) else str(value).lower()
                backend.set_subscription_attributes(subscription.arn, attribute, text)
        return cls(subscription.arn)

    @classmethod
    def delete_resource(cls, physical_id: str, props: dict[str, Any], account_id: str, region: str) -> None:
        sns_backends[account_id][region].unsubscribe(physical_id)


class CloudFormationSqsQueuePolicy(CloudFormationStandIn, CloudFormationModel):
    """Stands in for the ``AWS::SQS::QueuePolicy`` resource, which moto's CloudFormation skips.

    The policy is set as each queue's ``Policy`` attribute, as CloudFormation does through
    SetQueueAttributes. moto keeps it but does not enforce it on SNS's deliveries.
    """

    RESOURCE_TYPE = "AWS::SQS::QueuePolicy"
    ON_UPDATE = "rewritten"

    @staticmethod
    def _set(queue_urls: list[str], policy: str, account_id: str, region_name: str) -> None:
        for url in queue_urls:
            sqs_backends[account_id][region_name].set_queue_attributes(
                url.rsplit("/", 1)[-1], {"Policy": policy}
            )

    @classmethod
    def create_resource(cls, name: str, props: dict[str, Any], account_id: str, region: str) -> Self:
        urls = [str(url) for url in props["Queues"]]
        cls._set(urls, json.dumps(props["PolicyDocument"]), account_id, region)
        return cls(",".join(urls))

    @classmethod
    def delete_resource(cls, physical_id: str, props: dict[str, Any], account_id: str, region: str) -> None:
        urls = [str(url) for url in props.get("Queues", [])]
        with contextlib.suppress(Exception):
            cls._set(urls, "", account_id, region)


@dataclass
class SqsBatchDelivery:
    """One batch an SQS event source mapping handed to its function."""

    function: str
    queue: str
    size: int
    failed: int
    function_error: str | None
    bodies: tuple[str, ...] = ()  # the messages' bodies, in the batch's order


class LambdaSqsEventSourceMappingRules:
    """Stands in for the checks Lambda makes of an SQS event source mapping as it is created or
    updated, which moto's CreateEventSourceMapping and UpdateEventSourceMapping skip.

    - The queue's visibility timeout must be at least the function's timeout: "Lambda validates
      this requirement when you create or update an event source mapping and will return an
      error" (Lambda Developer Guide, "Configuring an Amazon SQS queue to use with Lambda",
      https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
    - A ``BatchSize`` above 10 needs a ``MaximumBatchingWindowInSeconds`` of at least 1 (botocore
      ``lambda`` 2015-03-31, ``CreateEventSourceMappingRequest.MaximumBatchingWindowInSeconds``:
      "when you set BatchSize to a value greater than 10, you must set
      MaximumBatchingWindowInSeconds to at least 1").

    Both are ``InvalidParameterValueException``, and nothing is created or changed.
    """

    DEFAULT_BATCH_SIZE = 10  # SQS (CreateEventSourceMappingRequest.BatchSize)

    @staticmethod
    def refusal(visibility_timeout: int, function_timeout: int, batch_size: int, window: int) -> str | None:
        """Why Lambda refuses such a mapping, or None."""
        if visibility_timeout < function_timeout:
            return (
                f"Queue visibility timeout: {visibility_timeout} seconds is less than Function timeout: "
                f"{function_timeout} seconds"
            )
        if batch_size > 10 and window < 1:
            return (
                "Maximum batch window in seconds must be greater than 0 if maximum batch size is "
                "greater than 10"
            )
        return None

    @staticmethod
    def _queue(backend: LambdaBackend, arn: str) -> Any | None:
        queues = sqs_backends[backend.account_id][backend.region_name].queues.values()
        return next((q for q in queues if q.queue_arn == arn), None)

    def _check(self, backend: LambdaBackend, queue: Any, function: str, batch_size: Any, window: Any) -> None:
        timeout = backend._lambdas.get_function_by_name_or_arn_with_qualifier(function).timeout
        size = int(batch_size) if batch_size is not None else self.DEFAULT_BATCH_SIZE
        why = self.refusal(int(queue.visibility_timeout), int(timeout), size, int(window or 0))
        if why:
            raise InvalidParameterValueException(why)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        create, update = LambdaBackend.create_event_source_mapping, LambdaBackend.update_event_source_mapping
        rules = self

        def create_event_source_mapping(backend: LambdaBackend, spec: dict[str, Any]) -> Any:
            queue = rules._queue(backend, str(spec.get("EventSourceArn", "")))
            if queue is not None and spec.get("FunctionName"):
                rules._check(
                    backend,
                    queue,
                    str(spec["FunctionName"]),
                    spec.get("BatchSize"),
                    spec.get("MaximumBatchingWindowInSeconds"),
                )
            return create(backend, spec)

        def update_event_source_mapping(backend: LambdaBackend, uuid: str, spec: dict[str, Any]) -> Any:
            mapping = backend.get_event_source_mapping(uuid)
            queue = rules._queue(backend, str(mapping.event_source_arn)) if mapping else None
            if mapping is not None and queue is not None:
                rules._check(
                    backend,
                    queue,
                    str(spec.get("FunctionName") or mapping.function_arn),
                    spec.get("BatchSize", mapping.batch_size),
                    spec.get("MaximumBatchingWindowInSeconds", mapping.max_batch_window),
                )
            return update(backend, uuid, spec)

        with (
            mock.patch.object(LambdaBackend, "create_event_source_mapping", create_event_source_mapping),
            mock.patch.object(LambdaBackend, "update_event_source_mapping", update_event_source_mapping),
        ):
            yield


def _reported_failures(response: bytes | str | None) -> list[Any] | None:
    """The response's ``batchItemFailures`` ([] for a complete success), or None if it is invalid."""
    try:
        body = json.loads(response) if response else None
    except ValueError:
        return None
    if body is None or body == {}:
        return []
    if not isinstance(body, dict):
        return None  # JSON, but not a response object: read as the guide's invalid response
    failures = body.get("batchItemFailures")
    if failures is None:
        return []
    return failures if isinstance(failures, list) else None


def batch_items_to_retry(response: bytes | str | None, message_ids: list[str]) -> set[str]:
    """The messages of a batch that become visible again, read from the function's response as
    Lambda reads a partial batch response ("Success and failure conditions", Lambda Developer
    Guide, https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#sqs-batchfailurereporting-conditions).

    None of them after an empty or null response, or an empty or null ``batchItemFailures`` list.
    All of them, as a complete failure, after a response that is not JSON, an empty string or
    null ``itemIdentifier``, an item with a bad key name, or an ``itemIdentifier`` that names no
    message of the batch.
    """
    everything = set(message_ids)
    failures = _reported_failures(response)
    if failures is None:
        return everything
    retry: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in everything:
            return everything
        retry.add(identifier)
    return retry


class SqsEventSourceMappingBatches:
    """Stands in for Lambda's SQS event source mapping: batches, the batching window, partial failures.

    moto invokes the function once per message, synchronously inside SendMessage (through
    Docker), and ignores ``BatchSize`` beyond its receive, the batching window and
    ``ReportBatchItemFailures``. Here a queue with a mapping is polled on the asynchronous
    invocation queue: a batch of up to ``BatchSize`` messages goes to the function in one
    synchronous invocation, in the record shape AWS documents; messages the function reports
    in ``batchItemFailures`` (or all, if it fails) become visible again and the others are
    deleted, so the queue's redrive policy moves a message that keeps failing to its
    dead-letter queue. The local cloud runs one invocation at a time, so events that AWS
    turns into messages at once arrive here one by one, spread over more time than the
    window; the window is therefore counted from the last message, not the first: a batch
    goes when it is full, or once no message has come for ``min(window, QUIET_SECONDS)``
    and nothing else under way could still send one (at the latest after the window).
    """

    QUIET_SECONDS = 0.3
    _POLL_SECONDS = 0.02

    def __init__(self, runtime: LambdaInvokeInProcess, queue: AsyncInvocationQueue, region: str) -> None:
        self.runtime = runtime
        self.queue = queue
        self.region = region
        self.deliveries: list[SqsBatchDelivery] = []
        self._lock = threading.Lock()
        self._polling: set[tuple[str, str]] = set()
        self._closed = False
        self._due: list[threading.Timer] = []  # delayed messages' polls, at the end of their delay

    def _poll_when_due(self, sqs_queue: Any, message: Any) -> None:
        """A delayed message (SendMessage's DelaySeconds) is not received before its delay ends
        ("Amazon SQS delay queues", SQS Developer Guide); moto keeps it out of the queue's
        visible messages until then, and its mapping is polled again at that moment. The wait
        is not work under way: the local cloud is idle meanwhile, as on AWS nothing runs."""
        seconds = max(0.0, (message.delayed_until - unix_time_millis()) / 1000) + self._POLL_SECONDS
        timer = threading.Timer(seconds, self._due_now, (sqs_queue,))
        timer.daemon = True
        with self._lock:
            if self._closed:
                return
            self._due.append(timer)
        timer.start()

    def _due_now(self, sqs_queue: Any) -> None:
        mappings = sqs_queue.lambda_event_source_mappings
        if mappings:
            self._notify(sqs_queue, mappings)

    def _notify(self, sqs_queue: Any, mappings: dict[str, Any]) -> None:
        for mapping in list(mappings.values()):
            if not mapping.enabled:
                continue
            key = (sqs_queue.queue_arn, mapping.function_arn)
            with self._lock:
                if key in self._polling or self._closed:
                    continue
                self._polling.add(key)
            self.queue.submit_call(
                f"sqs-event-source:{sqs_queue.name}", None, self._poller(sqs_queue, mapping, key)
            )

    def _others_in_flight(self) -> int:
        """Deliveries and invocations under way besides the pollers: they may still send messages."""
        with self.queue._idle:
            pending = self.queue._pending
        with self._lock:
            return pending - len(self._polling)

    def _poller(self, sqs_queue: Any, mapping: Any, key: tuple[str, str]) -> Callable[[], None]:
        batch_size = int(mapping.batch_size or 10)
        window = float(mapping.max_batch_window or 0)
        quiet = min(window, self.QUIET_SECONDS)

        def poll() -> None:
            last_count, changed = -1, time.monotonic()
            while True:
                with self._lock:
                    count = len(sqs_queue.messages)
                    if count == 0 or self._closed:
                        self._polling.discard(key)
                        return
                now = time.monotonic()
                if count != last_count:
                    last_count, changed = count, now
                waited = now - changed
                full = count >= batch_size
                if full or (waited >= quiet and (waited >= window or self._others_in_flight() <= 0)):
                    try:
                        self._deliver(sqs_queue, mapping, batch_size)
                    except Exception as exc:  # a poller must outlive any one delivery
                        self.deliveries.append(
                            SqsBatchDelivery(mapping.function_arn, sqs_queue.name, 0, 0, repr(exc))
                        )
                    last_count = -1
                    continue
                time.sleep(self._POLL_SECONDS)

        return poll

    def _deliver(self, sqs_queue: Any, mapping: Any, batch_size: int) -> None:
        backend = sqs_backends[sqs_queue.account_id][self.region]
        messages = backend.receive_message(sqs_queue.name, batch_size, 0, int(sqs_queue.visibility_timeout))
        if not messages:
            return
        records = [
            {
                "messageId": message.id,
                "receiptHandle": message.receipt_handle,
                "body": message.body,
                "attributes": {
                    "ApproximateReceiveCount": str(message.approximate_receive_count),
                    "SentTimestamp": str(message.sent_timestamp),
                    "SenderId": message.sender_id,
                    "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
                },
                "messageAttributes": {},
                "md5OfBody": message.body_md5,
                "eventSource": "aws:sqs",
                "eventSourceARN": sqs_queue.queue_arn,
                "awsRegion": self.region,
            }
            for message in messages
        ]
        response, failed = self.runtime.run(
            mapping.function_arn, json.dumps({"Records": records}), "RequestResponse"
        )
        error: str | None = None
        if failed:
            error = str(json.loads(response).get("errorType", "Unhandled"))
            retry = {m.id for m in messages}
        elif "ReportBatchItemFailures" in (mapping.function_response_types or []):
            retry = batch_items_to_retry(response, [m.id for m in messages])
        else:
            retry = set()
        for message in messages:
            if message.id in retry:
                backend.change_message_visibility(
                    sqs_queue.name, str(message.receipt_handle), visibility_timeout=0
                )
            else:
                backend.delete_message(sqs_queue.name, str(message.receipt_handle))
        self.deliveries.append(
            SqsBatchDelivery(
                mapping.function_arn,
                sqs_queue.name,
                len(messages),
                len(retry),
                error,
                tuple(str(message.body) for message in messages),
            )
        )

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = Queue.add_message
        stand_in = self

        def add_message(sqs_queue: Any, message: Any) -> None:
            # moto would invoke the mapped functions right here, one message at a time.
            with stand_in._lock:
                mappings = sqs_queue.lambda_event_source_mappings
                sqs_queue.lambda_event_source_mappings = {}
                try:
                    original(sqs_queue, message)
                finally:
                    sqs_queue.lambda_event_source_mappings = mappings
            if mappings:
                if message.delayed:
                    stand_in._poll_when_due(sqs_queue, message)
                else:
                    stand_in._notify(sqs_queue, mappings)

        try:
            with mock.patch.object(Queue, "add_message", add_message):
                yield
        finally:
            with self._lock:
                self._closed = True
                due, self._due = self._due, []
            for timer in due:
                timer.cancel()


# SNS Publish (botocore's sns model, 2010-03-31, PublishInput): "Subjects must be UTF-8 text with
# no line breaks or control characters, and less than 100 characters long"; the API reference's
# earlier wording adds "begins with a letter, number, or punctuation mark"
# (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html). A message "can be at most 256 KiB
# in size (262,144 bytes, not 262,144 characters)" by default, "the combined size of the message
# body and message attributes" (PublishInput.Message). Both refusals are InvalidParameter.
SNS_SUBJECT_LIMIT_CHARACTERS = 100
SNS_MESSAGE_LIMIT_BYTES = 262_144


def sns_subject_refusal(subject: str) -> str | None:
    """Why SNS refuses ``subject``, or None. Written from the documentation, apart from the runtime's
    own subject helper, so that the two can disagree and a test can see it."""
    if not subject:
        return "Subject must not be empty"
    if len(subject) >= SNS_SUBJECT_LIMIT_CHARACTERS:
        return f"Subject has {len(subject)} characters; it must be less than 100 characters long"
    if any(c in "\r\n" or unicodedata.category(c) in {"Cc", "Cs", "Zl", "Zp"} for c in subject):
        return "Subject must not include line breaks or control characters"
    if unicodedata.category(subject[0])[0] not in "LNPS":
        return "Subject must begin with a letter, number or punctuation mark"
    return None


def sns_message_bytes(message: str, attributes: dict[str, Any] | None) -> int:
    """What SNS counts against the message size: the body and every attribute's name, type and value."""
    size = len(message.encode())
    for name, attribute in (attributes or {}).items():
        size += len(name.encode()) + len(str(attribute.get("DataType", attribute.get("Type", ""))).encode())
        value = attribute.get("StringValue", attribute.get("BinaryValue", attribute.get("Value", "")))
        size += len(value if isinstance(value, bytes) else str(value).encode())
    return size


class SnsPublishRules:
    """Stands in for SNS refusing a Publish whose subject or size SNS does not accept.

    moto refuses subjects of more than 100 characters only (one more than SNS documents: see
    https://github.com/getmoto/moto/issues/1503), lets line breaks and control characters through,
    and counts the message in characters, without its attributes. Here a Publish is refused with
    ``InvalidParameter`` as the Publish API documents it, before moto sees it.
    """

    def __init__(self) -> None:
        self.refused: list[str] = []

    def check(self, message: str, subject: str | None, attributes: dict[str, Any] | None) -> None:
        reason = None if subject is None else sns_subject_refusal(subject)
        if reason is None and sns_message_bytes(message or "", attributes) > SNS_MESSAGE_LIMIT_BYTES:
            reason = "Message too long: body and attributes exceed 262,144 bytes"
        if reason is not None:
            self.refused.append(reason)
            raise InvalidParameterValue(f"Invalid parameter: {reason}")

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = SNSBackend.publish
        rules = self

        def publish(backend: SNSBackend, message: str, arn: str | None, *args: Any, **kwargs: Any) -> str:
            if kwargs.get("phone_number") is None:  # SMS has rules of its own, which canaryfleet never uses
                rules.check(message, kwargs.get("subject"), kwargs.get("message_attributes"))
            return original(backend, message, arn, *args, **kwargs)

        with mock.patch.object(SNSBackend, "publish", publish):
            yield


@contextlib.contextmanager
def publish_reaches_every_subscription() -> Iterator[None]:
    """Stands in for Publish delivering a topic's message to all its subscriptions.

    AWS: "If you send a message to a topic, Amazon SNS delivers the message to each endpoint that
    is subscribed to the topic" (botocore ``sns`` ``Publish``). moto's ``Topic.publish`` delivered
    to the first page of ListSubscriptionsByTopic only ("Each call returns a limited list of
    subscriptions, up to 100"): past 100 subscriptions (approvers, over fifty applications), the
    others got nothing. Here each page is delivered to, in moto's order, through the same
    ``Subscription.publish`` the other stand-ins wrap.
    """
    original = Topic.publish

    def publish(
        topic: Topic,
        message: str,
        subject: str | None = None,
        message_attributes: dict[str, Any] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        message_structure: str | None = None,
    ) -> str:
        backend = topic.sns_backend
        later: list[Any] = []  # the first page is moto's own delivery
        _, token = backend.list_subscriptions_by_topic(topic_arn=topic.arn)
        while token is not None:
            page, token = backend.list_subscriptions_by_topic(topic_arn=topic.arn, next_token=str(token))
            later += page
        given: dict[str, Any] = {
            "subject": subject,
            "message_attributes": message_attributes,
            "group_id": group_id,
            "deduplication_id": deduplication_id,
            "message_structure": message_structure,
        }
        message_id = str(original(topic, message, **given))
        for subscription in later:
            subscription.publish(message, message_id, **given)
        return message_id

    with mock.patch.object(Topic, "publish", publish):
        yield


# "By default, you can have up to 200 filter policies per topic, and 10,000 filter policies per AWS
# account" (SNS Developer Guide, "Filter policy constraints in Amazon SNS"); past it Subscribe fails
# with FilterPolicyLimitExceeded, HTTP 403 (botocore ``sns`` ``FilterPolicyLimitExceededException``).
FILTER_POLICIES_PER_TOPIC = 200


class FilterPolicyLimitExceeded(SNSException):
    code = "FilterPolicyLimitExceeded"


class SnsFilterPolicyQuota:
    """Stands in for SNS's quota of filter policies a topic holds (moto holds any number).

    A Subscribe that gives a ``FilterPolicy`` makes a new subscription hold one; on a topic whose
    subscriptions already hold FILTER_POLICIES_PER_TOPIC of them it is refused with
    ``FilterPolicyLimitExceeded`` and subscribes nobody. A Subscribe of an endpoint the topic
    already has makes no new subscription, and passes. Pending subscriptions count: they are
    subscriptions with their attributes until SNS deletes them. Not played: the account's 10,000,
    a policy added by SetSubscriptionAttributes, and a raised quota.
    """

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self.refused: list[str] = []  # the endpoints refused

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = SNSResponse.subscribe
        quota = self

        def subscribe(response: SNSResponse) -> ActionResult:
            backend = response.backend
            attributes = response._get_attributes() or {}
            ours = backend.account_id == quota.account_id and backend.region_name == quota.region
            if ours and attributes.get("FilterPolicy"):
                topic_arn = response._get_param("TopicArn")
                endpoint = response._get_param("Endpoint")
                if backend._find_subscription(topic_arn, endpoint, response._get_param("Protocol")) is None:
                    held = sum(
                        1
                        for sub in list(backend.subscriptions.values())
                        if sub.topic.arn == topic_arn and sub.attributes.get("FilterPolicy")
                    )
                    if held >= FILTER_POLICIES_PER_TOPIC:
                        quota.refused.append(str(endpoint))
                        raise FilterPolicyLimitExceeded(
                            f"the topic's subscriptions hold {held} filter policies, SNS's quota a topic"
                        )
            return original(response)

        with mock.patch.object(SNSResponse, "subscribe", subscribe):
            yield


#: What SNS shows for a subscription nobody has confirmed yet (ListSubscriptionsByTopic).
PENDING_CONFIRMATION = "PendingConfirmation"
_EMAIL_PROTOCOLS = frozenset({"email", "email-json"})


@dataclass(frozen=True)
class DeliveredEmail:
    """One email SNS sent to a confirmed email subscription."""

    endpoint: str
    topic_arn: str
    subject: str | None
    message: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ConfirmationEmail:
    """The email Subscribe sends an email endpoint: its link confirms the subscription."""

    endpoint: str
    topic_arn: str
    link: str


class SnsEmailSubscriptions:
    """Stands in for SNS's email subscriptions: confirmed by their owner, then delivered to.

    AWS: Subscribe to an email endpoint sends a confirmation email, and the subscription stays
    pending until its owner follows the link in it (API_Subscribe: a subscription that needs
    confirmation answers "pending confirmation"); ListSubscriptionsByTopic shows its
    SubscriptionArn as ``PendingConfirmation``; SNS delivers nothing to it meanwhile, and deletes
    it unconfirmed after 48 hours ("Deleting an Amazon SNS subscription and topic", SNS Developer
    Guide). moto confirms every subscription at once and sends no email. Here an email
    subscription is pending until :meth:`confirm` (its owner followed the link) or, while
    ``confirm_on_subscribe`` (the local stories' approvers confirm at once), as soon as it is
    made; each Publish that passes a confirmed subscription's filter policy is an email in
    ``delivered`` (the approvers' inboxes: ``canaryfleet_local.mailbox``). Not played: the
    48-hour deletion (a local story lasts minutes) and Subscribe's answer "pending
    confirmation" (moto's answers the ARN; canaryfleet does not read it).

    Confirming, and unsubscribing by an email's link (moto's ConfirmSubscription checks no token
    and confirms nothing; its subscriptions all say ``ConfirmationWasAuthenticated`` "true"):
    - A pending subscription's confirmation email is in ``confirmations``, its link
      ``https://sns.<region>.amazonaws.com/confirmation.html?TopicArn=…&Token=…&Endpoint=…``.
    - ConfirmSubscription "verifies an endpoint owner's intent to receive messages by validating
      the token sent to the endpoint by an earlier Subscribe action. If the token is valid, the
      action creates a new subscription" (API_ConfirmSubscription): a token Subscribe did not
      send for a pending subscription of that topic is refused (``InvalidParameter``, "a request
      parameter does not comply with the associated constraints"; an unknown topic is
      ``NotFound``). Refused too, by assumption (AWS does not document it): the token of a
      subscription already confirmed, so canaryfleet never reports one as protected that is not.
    - ``AuthenticateOnUnsubscribe`` "true" on a signed request (every boto3 call is signed)
      "disallows unauthenticated unsubscribes of the subscription" (API_ConfirmSubscription), and
      GetSubscriptionAttributes shows ``ConfirmationWasAuthenticated`` "true if the subscription
      confirmation request was authenticated" (API_GetSubscriptionAttributes); confirmed by the
      link (:meth:`confirm`, or ``confirm_on_subscribe``) it is "false".
    - :meth:`open_unsubscribe_link` is someone, or a mail scanner, opening the unsubscribe link
      that ends every email SNS sends: an unauthenticated unsubscribe, which removes the
      subscription unless it was confirmed with ``AuthenticateOnUnsubscribe``.
    """

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self.confirm_on_subscribe = True
        self.delivered: list[DeliveredEmail] = []
        self.confirmations: list[ConfirmationEmail] = []
        self._pending: set[str] = set()  # subscription ARNs
        self._tokens: dict[str, str] = {}  # confirmation token -> pending subscription ARN
        self._lock = threading.Lock()

    def _backend(self) -> SNSBackend:
        return sns_backends[self.account_id][self.region]

    def confirm(self, endpoint: str) -> int:
        """The owner of ``endpoint`` followed SNS's confirmation link; returns how many were pending."""
        with self._lock:
            confirmed = [
                arn
                for arn in self._pending
                if (sub := self._backend().subscriptions.get(arn)) is not None
                and sub.endpoint.lower() == endpoint.lower()
            ]
            for arn in confirmed:
                self._confirmed(arn, authenticated=False)
        return len(confirmed)

    def _confirmed(self, arn: str, authenticated: bool) -> Subscription:
        """Mark ``arn`` confirmed (the caller holds the lock); its tokens confirm nothing more."""
        self._pending.discard(arn)
        self._tokens = {token: sub for token, sub in self._tokens.items() if sub != arn}
        sub = self._backend().subscriptions[arn]
        sub.confirmed = True
        sub.attributes["PendingConfirmation"] = "false"
        sub.attributes["ConfirmationWasAuthenticated"] = "true" if authenticated else "false"
        return sub

    def confirm_with_token(self, topic_arn: str, token: str, authenticate_on_unsubscribe: bool) -> str:
        """ConfirmSubscription: the pending subscription Subscribe sent ``token`` for; its ARN."""
        backend = self._backend()
        if topic_arn not in backend.topics:
            raise SNSNotFoundError("Topic does not exist")
        with self._lock:
            arn = self._tokens.get(token)
            sub = backend.subscriptions.get(arn) if arn is not None else None
            if sub is None or sub.topic.arn != topic_arn:
                raise SNSInvalidParameter("Invalid parameter: Token")
            self._confirmed(sub.arn, authenticated=authenticate_on_unsubscribe)
        return str(sub.arn)

    def open_unsubscribe_link(self, endpoint: str) -> int:
        """Someone (or a mail scanner) opens the unsubscribe link of an email ``endpoint`` got.

        An unauthenticated unsubscribe: it ends every confirmed email subscription of the address
        but those confirmed with ``AuthenticateOnUnsubscribe``. Returns how many it ended.
        """
        backend = self._backend()
        with self._lock:
            ended = [
                arn
                for arn, sub in list(backend.subscriptions.items())
                if sub.protocol in _EMAIL_PROTOCOLS
                and sub.endpoint.lower() == endpoint.lower()
                and arn not in self._pending
                and sub.attributes.get("ConfirmationWasAuthenticated") != "true"
            ]
            for arn in ended:
                backend.unsubscribe(arn)
        return len(ended)

    def _mail_confirmation(self, subscription: Subscription) -> None:
        """Subscribe's confirmation email: a fresh token in a link (the caller holds the lock)."""
        token = secrets.token_hex(64)
        self._tokens[token] = subscription.arn
        link = (
            f"https://sns.{self.region}.amazonaws.com/confirmation.html"
            f"?TopicArn={quote(subscription.topic.arn, safe='')}&Token={token}"
            f"&Endpoint={quote(subscription.endpoint, safe='')}"
        )
        self.confirmations.append(ConfirmationEmail(subscription.endpoint, subscription.topic.arn, link))

    def _shown(self, subscriptions: list[Any]) -> list[Any]:
        shown = []
        for sub in subscriptions:
            copied = sub
            if sub.arn in self._pending:
                copied = copy.copy(sub)
                copied.arn = PENDING_CONFIRMATION
            shown.append(copied)
        return shown

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        stand_in = self
        subscribe, publish = SNSBackend.subscribe, Subscription.publish
        confirm = SNSResponse.confirm_subscription
        by_topic, everything = SNSBackend.list_subscriptions_by_topic, SNSBackend.list_subscriptions

        def ours(backend: SNSBackend) -> bool:
            return backend.account_id == stand_in.account_id and backend.region_name == stand_in.region

        def subscribe_email(backend: SNSBackend, topic_arn: str, endpoint: str, protocol: str) -> Any:
            existing = backend._find_subscription(topic_arn, endpoint, protocol)
            subscription = subscribe(backend, topic_arn, endpoint, protocol)
            if ours(backend) and protocol in _EMAIL_PROTOCOLS and existing is None:
                if stand_in.confirm_on_subscribe:
                    subscription.confirmed = True
                    subscription.attributes["ConfirmationWasAuthenticated"] = "false"  # by the link
                else:
                    subscription.confirmed = False
                    subscription.attributes["PendingConfirmation"] = "true"
                    with stand_in._lock:
                        stand_in._pending.add(subscription.arn)
                        stand_in._mail_confirmation(subscription)
            return subscription

        def confirm_subscription(response: SNSResponse) -> ActionResult:
            if not ours(response.backend):
                return confirm(response)
            arn = stand_in.confirm_with_token(
                response._get_param("TopicArn"),
                response._get_param("Token") or "",
                str(response._get_param("AuthenticateOnUnsubscribe") or "").lower() == "true",
            )
            return ActionResult({"SubscriptionArn": arn})

        def list_by_topic(backend: SNSBackend, topic_arn: str, next_token: str | None = None) -> Any:
            found, token = by_topic(backend, topic_arn, next_token=next_token)
            return (stand_in._shown(found) if ours(backend) else found), token

        def list_all(backend: SNSBackend, next_token: str | None = None) -> Any:
            found, token = everything(backend, next_token=next_token)
            return (stand_in._shown(found) if ours(backend) else found), token

        def deliver(
            subscription: Subscription, message: str, message_id: str, *args: Any, **kwargs: Any
        ) -> None:
            if subscription.protocol not in _EMAIL_PROTOCOLS:
                publish(subscription, message, message_id, *args, **kwargs)
                return
            attributes = kwargs.get("message_attributes") or {}
            matcher = subscription._filter_policy_matcher
            if matcher is not None and not matcher.matches(attributes, message):
                return
            # Topic.publish lists the topic's subscriptions as ListSubscriptionsByTopic shows them.
            pending = subscription.arn == PENDING_CONFIRMATION or subscription.arn in stand_in._pending
            if pending or not ours(subscription.topic.sns_backend):
                return
            with stand_in._lock:
                stand_in.delivered.append(
                    DeliveredEmail(
                        subscription.endpoint,
                        subscription.topic.arn,
                        kwargs.get("subject"),
                        message,
                        attributes,
                    )
                )

        with (
            mock.patch.object(SNSBackend, "subscribe", subscribe_email),
            mock.patch.object(SNSBackend, "list_subscriptions_by_topic", list_by_topic),
            mock.patch.object(SNSBackend, "list_subscriptions", list_all),
            mock.patch.object(Subscription, "publish", deliver),
            mock.patch.object(SNSResponse, "confirm_subscription", confirm_subscription),
        ):
            yield
