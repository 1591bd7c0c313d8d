"""Not AWS behaviours: the RSA key pairs moto makes and nothing here uses, made when used or once.

KMS. moto gives every KMS key an asymmetric private key at CreateKey, and for a key spec that is not
RSA or ECC (``SYMMETRIC_DEFAULT``, ``HMAC_*``, ``SM2``) an RSA 2048 one, for Sign, Verify and
GetPublicKey to use if they are asked. On AWS a symmetric key has no key pair at all: "Returns the
public key of an asymmetric KMS key" (GetPublicKey,
https://docs.aws.amazon.com/kms/latest/APIReference/API_GetPublicKey.html). Every local cloud
creates two such keys whose pairs nothing uses, the AWS managed keys behind the platform's
encrypted tables (``alias/aws/dynamodb``) and its instances' volumes (EBS default encryption):
making an RSA key takes tens of milliseconds of CPU, 2% of the suite's. Under
:func:`key_pairs_made_when_used` moto still makes the same pair, on the first call that uses it,
so every operation answers what moto answers; RSA and ECC key specs are made at CreateKey as
before (their checks raise there).

SNS. moto signs each message it delivers through a subscription (the envelope an SQS queue gets
holds ``Signature`` and ``SigningCertURL``) with a key pair of the subscription's own, made at its
first message: one more RSA key per cloud for the notifications queue's subscription. On AWS the
messages of a region are signed with SNS's own certificate, the one ``SigningCertURL`` names
("Verifying the signatures of Amazon SNS messages",
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html). Under
:func:`one_sns_signing_key` every subscription signs with one key per process; moto still makes a
certificate for each message and keeps it where ``SigningCertURL`` finds it, so each signature
verifies as before.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from unittest import mock

import moto.kms.models
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.kms.utils import AbstractPrivateKey, KeySpec
from moto.sns.models import Subscription

_MADE_AT_CREATE_KEY = frozenset(KeySpec.rsa_key_specs()) | frozenset(KeySpec.ecc_key_specs())


class KeyPairMadeWhenUsed(AbstractPrivateKey):
    """moto's private key for ``key_spec``, made by ``make`` the first time one of its methods runs."""

    def __init__(self, key_spec: str, make: Callable[[str], AbstractPrivateKey]) -> None:
        self.key_spec = key_spec
        self._make = make
        self._made: AbstractPrivateKey | None = None
        self._lock = threading.Lock()

    @property
    def made(self) -> bool:
        return self._made is not None

    def _key(self) -> AbstractPrivateKey:
        with self._lock:
            if self._made is None:
                self._made = self._make(self.key_spec)
            return self._made

    def sign(self, message: bytes, signing_algorithm: str) -> bytes:
        return self._key().sign(message, signing_algorithm)

    def verify(self, message: bytes, signature: bytes, signing_algorithm: str) -> bool:
        return self._key().verify(message, signature, signing_algorithm)

    def public_key(self) -> bytes:
        return self._key().public_key()


@contextlib.contextmanager
def key_pairs_made_when_used() -> Iterator[None]:
    """KMS keys created inside make the key pair moto gives a symmetric key when it is first used."""
    original = moto.kms.models.generate_private_key  # type: ignore[attr-defined]  # imported there from utils

    def generate_private_key(key_spec: str) -> AbstractPrivateKey:
        if key_spec in _MADE_AT_CREATE_KEY:
            return original(key_spec)
        return KeyPairMadeWhenUsed(key_spec, original)

    with mock.patch.object(moto.kms.models, "generate_private_key", generate_private_key):
        yield


@functools.lru_cache(maxsize=1)
def sns_signing_key() -> rsa.RSAPrivateKey:
    """The key every subscription signs its messages with: made as moto makes each one's."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@contextlib.contextmanager
def one_sns_signing_key() -> Iterator[None]:
    """SNS messages delivered inside are signed with one key per process, not one per subscription."""

    def private_key(self: Subscription) -> rsa.RSAPrivateKey:
        return sns_signing_key()

    with mock.patch.object(Subscription, "private_key", private_key):
        yield
