#!/usr/bin/env python3
"""Starts the ingest of a file already in landing/, follows it with the `get_status` query and,
once it waits in quarantine, reviews it (the `review` signal, or with `--via update` the `review`
Update); then waits for the outcome.

Against `lakegate dev` (in the repository root, after `scripts/bootstrap`):

    .venv/bin/python examples/python/ingest_and_review.py \
        --key landing/emr/ehr/patients.csv --decision approve --reviewer alice

On the local backend the version is the SHA-256 of <data dir>/<bucket>/<key>; on AWS pass
`--version` (the S3 version id, or the ETag without quotes on an unversioned bucket).
Prints one JSON object on stdout (no file contents, only ids, phases and zones); exits 0 once
the run has settled, 1 when it did not in time or its answers could not be read, 2 when the
`review` Update refused the review.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import lakegate_client as lg


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--key", required=True, help="landing/<source>/<dataset>/<file>")
    p.add_argument("--address", help="Temporal host:port (default: TEMPORAL_ADDRESS or 127.0.0.1:7233)")
    p.add_argument("--task-queue", default=lg.DEFAULT_TASK_QUEUE)
    p.add_argument("--bucket", default="lake")
    p.add_argument("--data-dir", type=Path, default=Path(".lakegate"),
                   help="lakegate's data dir: the local lake is <data dir>/<bucket>/")
    p.add_argument("--version", help="the file version (default: SHA-256 of the local file)")
    p.add_argument("--codec-key-file", type=Path,
                   help="payload keys (default: LAKEGATE_CODEC_KEYS, else <data dir>/codec.keys)")
    p.add_argument("--review-timeout-secs", type=int)
    p.add_argument("--decision", choices=["approve", "reject"], default="approve")
    p.add_argument("--reviewer", default="python-client")
    p.add_argument("--reason", default="")
    p.add_argument("--via", choices=["signal", "update"], default="signal",
                   help="send the review as the `review` signal, or as the `review` Update, which "
                        "answers with what was done or why the review was refused")
    p.add_argument("--wait-secs", type=float, default=60.0)
    return p.parse_args()


async def wait_settled(handle, deadline: float) -> dict:
    """Polls `get_status` until the run waits for review or is done. Right after a start the
    query can fail (no worker has taken the first task yet): that is retried, not fatal."""
    while True:
        try:
            status = await handle.query(lg.STATUS_QUERY)
            if status["phase"] in lg.SETTLED_PHASES:
                return status
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"{handle.id} did not settle in time")
        await asyncio.sleep(0.2)


async def in_inbox(client, dataset: str | None, workflow_id: str) -> bool:
    """Whether the run shows in its dataset's review inbox within a few seconds."""
    deadline = time.monotonic() + 10
    while workflow_id not in await lg.review_inbox(client, dataset):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def main() -> int:
    args = parse_args()
    version = args.version or lg.local_version(args.data_dir / args.bucket / args.key)
    codec = lg.LakegateCodec.from_config(args.codec_key_file, args.data_dir)
    client = await lg.connect(args.address, codec)
    started = await lg.start_ingest(
        client, args.task_queue, args.bucket, args.key, version, args.review_timeout_secs
    )
    deadline = time.monotonic() + args.wait_secs
    report = {"workflow_id": started.workflow_id, "started": started.new}
    try:
        status = await wait_settled(started.handle, deadline)
        report["status"] = {
            "phase": status["phase"],
            "zone": status["zone"],
            "quarantine_reason": status.get("quarantine_reason"),
            "contract": status.get("contract"),
        }
        if status["phase"] == "awaiting_review":
            dataset = (status.get("contract") or {}).get("dataset")
            report["in_review_inbox"] = await in_inbox(client, dataset, started.workflow_id)
            review = {"decision": args.decision, "reviewer": args.reviewer, "reason": args.reason}
            if args.via == "signal":
                await started.handle.signal(lg.REVIEW_SIGNAL, review)
            else:
                try:
                    report["review_outcome"] = await lg.review_with_update(started.handle, review)
                except lg.ReviewRefused as refused:
                    report["review_refused"] = str(refused)
                    print(json.dumps(report))
                    return 2
            report["reviewed"] = review
        remaining = max(deadline - time.monotonic(), 1.0)
        outcome = await asyncio.wait_for(started.handle.result(), remaining)
    except Exception as e:
        # A timeout, or answers that do not decode (encrypted by the workers, and this client has
        # no keys): said in the report, which names types and ids, never payload contents.
        report["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(report))
        return 1
    report["outcome"] = {
        "phase": outcome["phase"],
        "zone": outcome["zone"],
        "review": outcome.get("review"),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    code = asyncio.run(main())
    # The SDK's Rust threads can outlive the event loop and abort the interpreter's teardown of a
    # short-lived client (temporalio/sdk-python#300: "PyGILState_Release ... finalizing",
    # SIGABRT), after the work is done: end the process without that teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
