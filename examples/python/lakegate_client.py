"""What a Python service needs to talk to lakegate's workflows with the official Temporal SDK.

- `ingest_workflow_id`: the id of a file version's IngestFileWorkflow, byte for byte as
  lakegate computes it (models/src/ids.rs), so a start from here and an S3 event for the same
  version meet in one run.
- `local_version` / `s3_version`: the version that goes into the id on each backend.
- `LakegateCodec`: the AES-256-GCM payload codec of worker/src/codec.rs. Workers with keys
  encrypt every payload they send (results, query answers); a client without the codec can still
  start and signal (plain payloads are read) but cannot read what comes back.
- `connect`: a client with Temporal's standard configuration (TEMPORAL_ADDRESS, temporal.toml
  profiles, ...) and, when keys are given, the codec.

See docs/clients.md for the contract these follow and docs/schemas/ for the payload shapes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from base64 import b64decode
from collections.abc import Sequence
from pathlib import Path

import temporalio.converter
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.envconfig import ClientConfigProfile
from temporalio.exceptions import WorkflowAlreadyStartedError

# Names (models/src/lib.rs, `names`): changing them breaks running workflows, so they are stable.
DEFAULT_TASK_QUEUE = "lakegate"
INGEST_FILE_WORKFLOW = "IngestFileWorkflow"
REVIEW_SIGNAL = "review"
# The Update of the same name (validated: a wrong review is refused with a message, not recorded).
REVIEW_UPDATE = "review"
STATUS_QUERY = "get_status"
# Custom search attributes (Keyword) the ingest workflow sets; clients read, never set them.
SA_DATASET = "LakegateDataset"
SA_PHASE = "LakegatePhase"
# Phases after which a run waits for nothing (IngestPhase).
SETTLED_PHASES = ("awaiting_review", "promoted", "rejected")

ENCODING_KEY = "encoding"
ENCRYPTED_ENCODING = b"binary/encrypted"
KEY_ID_KEY = "encryption-key-id"
KEYS_ENV = "LAKEGATE_CODEC_KEYS"
NONCE_LEN = 12


def ingest_workflow_id(bucket: str, key: str, version: str) -> str:
    """SHA-256 over each part's UTF-8 length (8 bytes, big-endian) then its bytes, in the order
    bucket, key, version; `ingest-` and the first 32 hex digits."""
    digest = hashlib.sha256()
    for part in (bucket, key, version):
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return "ingest-" + digest.hexdigest()[:32]


def local_version(path: Path) -> str:
    """The local backend's version: hex SHA-256 of the file's bytes (a folder has no version
    ids), as `lakegate ingest`, the console upload, the watched folder and the sweep use."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def s3_version(head_object: dict) -> str:
    """The AWS backend's version, from a boto3 S3 HeadObject (or PutObject) response: the version
    id when S3 returns one, else the ETag without its quotes; what lakegate's sweep, `lakegate
    ingest` and event router use (an event: `versionId`, else `eTag`)."""
    version = head_object.get("VersionId")
    if version:
        return version
    return head_object["ETag"].strip('"')


class CodecError(Exception):
    """A key file or payload the codec cannot use. Never carries key material."""


class LakegateCodec(temporalio.converter.PayloadCodec):
    """lakegate's payload encryption (worker/src/codec.rs).

    An encrypted payload has metadata `encoding: binary/encrypted` and `encryption-key-id: <id>`;
    its data is a 12-byte nonce, then AES-256-GCM over the whole original payload serialised as
    a protobuf `Payload` (its metadata too), with the key id as associated data. The first key
    encrypts; every key decrypts; payloads that are not encrypted pass through.
    """

    def __init__(self, keys: Sequence[tuple[str, bytes]]):
        # Imported here: only a client with keys needs `cryptography`.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not keys:
            raise CodecError("no payload keys given")
        self._current = keys[0][0]
        self._ciphers = {}
        for key_id, key in keys:
            if key_id in self._ciphers:
                raise CodecError(f"key id {key_id!r} appears twice")
            self._ciphers[key_id] = AESGCM(key)

    @classmethod
    def parse(cls, text: str) -> LakegateCodec:
        """`<key id> <base64 of 32 bytes>` entries, one a line or separated by `;`; blank lines
        and lines starting with `#` are skipped (PayloadKeys::parse)."""
        keys = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.lstrip().startswith("#"):
                continue
            for entry in line.split(";"):
                if not entry.strip():
                    continue
                parts = entry.split()
                if len(parts) != 2:
                    raise CodecError(
                        f"key line {number}: expected `<key id> <base64 of 32 bytes>`"
                    )
                try:
                    key = b64decode(parts[1], validate=True)
                except ValueError:
                    key = b""
                if len(key) != 32:
                    raise CodecError(f"key {parts[0]!r}: not base64 of exactly 32 bytes")
                keys.append((parts[0], key))
        return cls(keys)

    @classmethod
    def from_config(
        cls, key_file: Path | None, data_dir: Path | None = None
    ) -> LakegateCodec | None:
        """The keys lakegate would use: `key_file`, else LAKEGATE_CODEC_KEYS, else the key file
        `lakegate dev` writes (<data dir>/codec.keys) if there is one, else none."""
        if key_file is not None:
            return cls.parse(key_file.read_text())
        if os.environ.get(KEYS_ENV):
            return cls.parse(os.environ[KEYS_ENV])
        dev_keys = (data_dir or Path(".lakegate")) / "codec.keys"
        if dev_keys.exists():
            return cls.parse(dev_keys.read_text())
        return None

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self._current]
        aad = self._current.encode()
        out = []
        for payload in payloads:
            nonce = os.urandom(NONCE_LEN)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), aad)
            out.append(
                Payload(
                    metadata={ENCODING_KEY: ENCRYPTED_ENCODING, KEY_ID_KEY: aad},
                    data=nonce + sealed,
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        from cryptography.exceptions import InvalidTag

        out = []
        for payload in payloads:
            if payload.metadata.get(ENCODING_KEY) != ENCRYPTED_ENCODING:
                out.append(payload)
                continue
            if KEY_ID_KEY not in payload.metadata:
                raise CodecError("encrypted payload has no key id")
            key_id = payload.metadata[KEY_ID_KEY].decode("utf-8", "replace")
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise CodecError(
                    f"payload encrypted with key {key_id!r}, which is not among the configured keys"
                )
            nonce, sealed = payload.data[:NONCE_LEN], payload.data[NONCE_LEN:]
            try:
                plain = cipher.decrypt(nonce, sealed, key_id.encode())
            except InvalidTag:
                raise CodecError(
                    f"encrypted payload does not decrypt with key {key_id!r}"
                ) from None
            out.append(Payload.FromString(plain))
        return out


def data_converter(codec: LakegateCodec | None) -> temporalio.converter.DataConverter:
    """JSON payloads (`json/plain`, what lakegate's Rust SDK reads and writes) with the codec in
    front; failure messages are encoded too, as lakegate's own clients do."""
    converter = temporalio.converter.DataConverter.default
    if codec is None:
        return converter
    return dataclasses.replace(
        converter,
        payload_codec=codec,
        failure_converter_class=temporalio.converter.DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(address: str | None, codec: LakegateCodec | None) -> Client:
    """A client from Temporal's standard configuration; `address` overrides its address."""
    config = ClientConfigProfile.load().to_client_connect_config()
    if address:
        config["target_host"] = address
    config.setdefault("target_host", "127.0.0.1:7233")
    return await Client.connect(**config, data_converter=data_converter(codec))


@dataclasses.dataclass
class Started:
    handle: WorkflowHandle
    workflow_id: str
    # False when this file version already had a run (open or completed): that run answers.
    new: bool


async def start_ingest(
    client: Client,
    task_queue: str,
    bucket: str,
    key: str,
    version: str,
    review_timeout_secs: int | None = None,
) -> Started:
    """Starts the file version's IngestFileWorkflow with lakegate's id and id policies: a run that
    is open or completed is not started again (conflict policy Fail, reuse policy
    AllowDuplicateFailedOnly); a failed or terminated one may be started afresh."""
    workflow_id = ingest_workflow_id(bucket, key, version)
    payload = {"bucket": bucket, "key": key, "version": version}
    if review_timeout_secs is not None:
        payload["review_timeout_secs"] = review_timeout_secs
    try:
        handle = await client.start_workflow(
            INGEST_FILE_WORKFLOW,
            payload,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        return Started(handle, workflow_id, new=True)
    except WorkflowAlreadyStartedError:
        return Started(client.get_workflow_handle(workflow_id), workflow_id, new=False)


class ReviewRefused(Exception):
    """The `review` Update's validator refused the review (wrong field, not in quarantine yet,
    already decided); the message names the field or rule, never the value sent."""


async def review_with_update(handle: WorkflowHandle, review: dict) -> dict:
    """Sends `review` as the Update and returns its result once the workflow acted on it:
    `{"outcome": "promoted" | "rejected", "key": ...}` or `{"outcome": "waiting", "reason": ...}`."""
    try:
        return await handle.execute_update(REVIEW_UPDATE, review)
    except WorkflowUpdateFailedError as e:
        cause = e.cause
        raise ReviewRefused(getattr(cause, "message", None) or str(cause)) from None


async def review_inbox(client: Client, dataset: str | None = None, limit: int = 100) -> list[str]:
    """Ids of the ingests waiting for review (of one dataset), found by search attributes.
    Visibility is eventually consistent: a run that just reached quarantine may not be listed yet."""
    query = f"WorkflowType = '{INGEST_FILE_WORKFLOW}' AND {SA_PHASE} = 'awaiting_review'"
    if dataset is not None:
        # Dataset names are identifiers from contracts; anything else is refused, not escaped.
        if not dataset.replace("_", "").replace("-", "").isalnum():
            raise ValueError("a dataset name is letters, digits, '_' and '-'")
        query += f" AND {SA_DATASET} = '{dataset}'"
    return [run.id async for run in client.list_workflows(query, limit=limit)]
