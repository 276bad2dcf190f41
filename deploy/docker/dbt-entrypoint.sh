#!/bin/sh
# Entrypoint of the dbt Batch image. lakegate's TransformWorkflow submits one Batch job per dbt
# stage; the job's command (a container override, which replaces the image's CMD and arrives here
# as "$@") is exactly
#   dbt build --select path:models/<stage> --project-dir <dir> --profiles-dir <dir> --target <t>
# or, to resume a failed stage, `dbt retry` with the same three flags. The environment carries the
# job definition's Athena settings plus the transform's `environment` from pipeline.yaml.
set -eu

die() {
  echo "lakegate-dbt: $*" >&2
  exit 64
}

[ "$#" -gt 0 ] || die "no command; expected: dbt build|retry ... (lakegate submits it as the job's command)"
# The job role can write models and run Athena queries: this image runs dbt and nothing else.
[ "$1" = dbt ] || die "refusing to run '$1': this image runs dbt commands only"

# The project and profiles directories are named by pipeline.yaml (absolute paths, as the job sees
# them). Say which one is missing instead of letting dbt fail with a generic parse error.
prev=
for arg in "$@"; do
  case "$prev" in
    --project-dir | --profiles-dir)
      [ -d "$arg" ] || die "$prev $arg: no such directory in this image (pipeline.yaml must name the path the dbt project was copied to, /opt/lakegate/dbt)"
      ;;
  esac
  prev=$arg
done

# dbt writes target/ (run_results.json, compiled SQL) and logs/; the image's files are read-only
# to the job's user, so both go to a scratch folder that lives as long as the job.
scratch=${LAKEGATE_DBT_SCRATCH:-/tmp/lakegate-dbt}
mkdir -p "$scratch"
export DBT_TARGET_PATH="${DBT_TARGET_PATH:-$scratch/target}"
export DBT_LOG_PATH="${DBT_LOG_PATH:-$scratch/logs}"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false

# Artifacts (run_results.json, manifest.json) live in the bucket, keyed by job name: lakegate's
# BatchRunner sets LAKEGATE_ARTIFACTS (s3://<bucket>/<jobs prefix>) and LAKEGATE_JOB_NAME, and
# LAKEGATE_RESUME_FROM on a job that resumes a failed one. Each Batch job starts from a clean
# container, so `dbt retry` gets the failed job's files downloaded as its state (DBT_STATE).
artifacts=${LAKEGATE_ARTIFACTS:-}
py=${LAKEGATE_PYTHON:-python3}
helper=${LAKEGATE_ARTIFACTS_HELPER:-/usr/local/bin/lakegate-artifacts.py}
if [ -n "$artifacts" ] && [ -n "${LAKEGATE_RESUME_FROM:-}" ] && [ -z "${DBT_STATE:-}" ]; then
  state=$scratch/state
  "$py" "$helper" get "$artifacts" "$LAKEGATE_RESUME_FROM" "$state" || die "cannot download the artifacts of $LAKEGATE_RESUME_FROM"
  export DBT_STATE="$state"
fi
if [ "${2:-}" = retry ] && [ ! -f "${DBT_STATE:-$DBT_TARGET_PATH}/run_results.json" ]; then
  echo "lakegate-dbt: dbt retry has no previous run_results.json in this job; nothing to resume" >&2
fi

# dbt's exit code is the job's; the upload runs whatever it was (a failed stage's run_results.json
# is what the retry and the failed-test check read). A failed upload fails the job: without its
# artifacts lakegate cannot report nodes or resume.
set +e
"$@"
code=$?
set -e
if [ -n "$artifacts" ] && [ -n "${LAKEGATE_JOB_NAME:-}" ]; then
  if ! "$py" "$helper" put "$artifacts" "$LAKEGATE_JOB_NAME" "$DBT_TARGET_PATH"; then
    echo "lakegate-dbt: uploading the artifacts of $LAKEGATE_JOB_NAME failed" >&2
    [ "$code" -ne 0 ] || code=70
  fi
fi
exit "$code"
