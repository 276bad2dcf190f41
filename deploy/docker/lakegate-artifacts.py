"""Copies dbt's target/ files between a Batch job's scratch folder and the lake bucket.

The dbt image's entrypoint runs this (with the image's Python, whose boto3 dbt-athena already
needs) so a job's run_results.json and manifest.json outlive its container:

    lakegate-artifacts put <s3://bucket/prefix/> <job name> <target dir>
    lakegate-artifacts get <s3://bucket/prefix/> <job name> <state dir>

Objects go to <prefix><job name>/target/<file>. `get` of a job that left no files copies nothing
and says so; dbt retry then reports that it has nothing to resume. Only file names are printed:
the files hold model names and timings, which stay in the bucket's restricted jobs zone.
"""

import os
import sys

import boto3
import botocore.config
import botocore.exceptions

FILES = ("run_results.json", "manifest.json")


def split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise SystemExit(f"lakegate-artifacts: not an s3:// URI: {uri}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] not in ("put", "get"):
        print(__doc__, file=sys.stderr)
        return 64
    verb, uri, job, folder = argv
    bucket, prefix = split(uri)
    # The SDK's standard retry mode absorbs throttles and 5xx, as the worker's clients do.
    s3 = boto3.client(
        "s3", config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 5})
    )
    copied = 0
    for name in FILES:
        key = f"{prefix}{job}/target/{name}"
        path = os.path.join(folder, name)
        if verb == "put":
            if not os.path.isfile(path):
                continue
            s3.upload_file(path, bucket, key)
        else:
            os.makedirs(folder, exist_ok=True)
            try:
                s3.download_file(bucket, key, path)
            except botocore.exceptions.ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                    continue
                raise
        copied += 1
    print(f"lakegate-artifacts: {verb} {copied} file(s) for job {job}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
