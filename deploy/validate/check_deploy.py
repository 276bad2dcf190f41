"""Cross-file checks of deploy/ that no off-the-shelf linter knows about.

Each check compares two files that must agree for a deployment to work: what Terraform creates
against what the worker is told (deploy/k8s/worker.env, pipeline.yaml), what the Deployment sets
against what the code reads, what the Batch job is given against what the dbt profile needs. Run by
scripts/validate-deploy with the project virtualenv's Python (python-hcl2, PyYAML). Prints one line
per failure and exits 1 if there was any.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import hcl2
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TF = DEPLOY / "terraform"
K8S = DEPLOY / "k8s"

# Temporal's client configuration (temporalio-common's envconfig, read by worker/src/client.rs
# through ClientOptions::load_from_config). The crate lives in cargo's registry, not in this
# repository, so its names are listed here.
TEMPORAL_ENVCONFIG = {
    "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE", "TEMPORAL_TLS", "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION",
}
# The AWS SDK's standard chain (docs/aws.md, "Clients, credentials, endpoints").
AWS_SDK = {"AWS_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_STS_REGIONAL_ENDPOINTS"}
# Names another change is adding to the worker right now (observability: --metrics-addr). Accepted
# with a note until the code reads them; then the note asks for the entry to go.
PENDING = {"LAKEGATE_METRICS_ADDR"}

failures: list[str] = []


def fail(msg: str) -> None:
    failures.append(msg)


def unq(v):
    """python-hcl2 keeps HCL's quotes on string literals."""
    if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"':
        return v[1:-1]
    return v


def load_tf() -> dict[str, dict]:
    out = {}
    for path in sorted(TF.glob("*.tf")):
        with path.open() as f:
            try:
                out[path.name] = hcl2.load(f)
            except Exception as e:  # the parser's own errors name line and column
                fail(f"{path.relative_to(ROOT)}: does not parse as HCL2: {e}")
    return out


def tf_blocks(tf: dict[str, dict], kind: str):
    for doc in tf.values():
        for block in doc.get(kind, []):
            yield block


def tf_variables(tf) -> dict[str, dict]:
    return {unq(k): v for b in tf_blocks(tf, "variable") for k, v in b.items()}


def tf_locals(tf) -> dict:
    out = {}
    for b in tf_blocks(tf, "locals"):
        out.update(b)
    return out


def tf_resources(tf, rtype: str) -> dict[str, dict]:
    out = {}
    for b in tf_blocks(tf, "resource"):
        for t, named in b.items():
            if unq(t) == rtype:
                out.update({unq(n): body for n, body in named.items()})
    return out


def default(variables, name):
    d = variables[name].get("default")
    return [unq(x) for x in d] if isinstance(d, list) else unq(d)


def check_iam_templates(tf) -> None:
    """Terraform fills deploy/iam/*.json with templatefile; every placeholder needs a value."""
    template_vars = set(tf_locals(tf).get("iam_template_vars", {}))
    if not template_vars:
        fail("deploy/terraform: local.iam_template_vars is missing")
    used = set()
    for name, doc in tf.items():
        text = json.dumps(doc)
        for rel, args in re.findall(r'templatefile\(\\"\$\{path\.module\}/([^"\\]+)\\", ([^)]+)\)', text):
            path = (TF / rel).resolve()
            used.add(path.name)
            if not path.is_file():
                fail(f"deploy/terraform/{name}: templatefile names {rel}, which does not exist")
                continue
            if path.parent != DEPLOY / "iam":
                fail(f"deploy/terraform/{name}: {rel} is not one of deploy/iam/*.json")
            if args.strip() != "local.iam_template_vars":
                fail(f"deploy/terraform/{name}: {rel} is templated with {args}, not local.iam_template_vars")
            body = path.read_text()
            missing = set(re.findall(r"\$\{([a-z_]+)\}", body)) - template_vars
            if missing:
                fail(f"{path.relative_to(ROOT)}: placeholders {sorted(missing)} get no value in local.iam_template_vars")
            try:
                json.loads(re.sub(r"\$\{[a-z_]+\}", "x", body))
            except json.JSONDecodeError as e:
                fail(f"{path.relative_to(ROOT)}: not JSON once templated: {e}")
    for policy in (DEPLOY / "iam").glob("*.json"):
        if policy.name not in used:
            fail(f"{policy.relative_to(ROOT)} is not used by any templatefile() in deploy/terraform")


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            fail(f"{path.relative_to(ROOT)}:{n}: not NAME=value")
            continue
        k, v = line.split("=", 1)
        env[k] = v
    return env


def names_the_code_reads() -> set[str]:
    names = set()
    for src in ROOT.glob("*/src/**/*.rs"):
        names |= set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', src.read_text()))
    for src in list(ROOT.glob("*/src/**/*.rs")) + list(ROOT.glob("activities/*/src/**/*.rs")):
        text = src.read_text()
        names |= set(re.findall(r'(?:try_from_env|var_os|var)\(\s*"([A-Z0-9_]+)"', text))
        names |= set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', text))
    return names


def check_worker_env(tf, deployment: dict) -> None:
    env_file = K8S / "worker.env"
    env = read_env_file(env_file)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", "")
    read = names_the_code_reads()
    for name in sorted(env):
        if name in read or name in TEMPORAL_ENVCONFIG or name in AWS_SDK:
            if name in PENDING:
                print(f"note: {name} is read by the code now; remove it from PENDING in {Path(__file__).name}")
            continue
        if name in PENDING:
            print(f"note: {name} is not read by this checkout yet (being added by another change)")
            continue
        fail(f"deploy/k8s: the worker is given {name}, which lakegate does not read")

    # The names the worker is given match the names Terraform creates (with the default prefix).
    variables = tf_variables(tf)
    prefix = default(variables, "name_prefix")
    expect = {
        "LAKEGATE_BACKEND": "aws",
        "LAKEGATE_ATHENA_WORKGROUP": prefix,
        "LAKEGATE_BATCH_JOB_QUEUE": f"{prefix}-dbt",
        "LAKEGATE_BATCH_JOB_DEFINITION": f"{prefix}-dbt",
    }
    for k, v in expect.items():
        if env.get(k) != v:
            fail(f"deploy/k8s/worker.env: {k}={env.get(k)!r}, but deploy/terraform creates {v!r}")
    if not env.get("LAKEGATE_SQS_QUEUE_URL", "").endswith(f"/{prefix}-s3-events"):
        fail("deploy/k8s/worker.env: LAKEGATE_SQS_QUEUE_URL does not name the queue deploy/terraform creates")
    if env.get("LAKEGATE_ATHENA_OUTPUT", "") != f"s3://{env.get('LAKEGATE_BUCKET')}/{default(variables, 'athena_results_prefix')}":
        fail("deploy/k8s/worker.env: LAKEGATE_ATHENA_OUTPUT is not the workgroup's result location")
    outputs = {unq(k): v for b in tf_blocks(tf, "output") for k, v in b.items()}
    tf_env = set(outputs.get("worker_env", {}).get("value", {}))
    if not tf_env or not tf_env <= set(env):
        fail(f"deploy/k8s/worker.env lacks {sorted(tf_env - set(env))} from terraform's worker_env output")

    # Paths the worker is told about are where the Deployment mounts them.
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    pipeline = env.get("LAKEGATE_PIPELINE", "")
    if Path(pipeline).parent.as_posix() != mounts.get("pipeline") or Path(pipeline).name != "pipeline.yaml":
        fail(f"deploy/k8s: LAKEGATE_PIPELINE={pipeline} is not pipeline.yaml in the pipeline mount {mounts.get('pipeline')}")
    if env.get("LAKEGATE_CONTRACTS") != mounts.get("contracts"):
        fail("deploy/k8s: LAKEGATE_CONTRACTS is not the contracts mount")
    if not env.get("TEMPORAL_CONFIG_FILE", "").startswith(mounts.get("temporal", "?") + "/"):
        fail("deploy/k8s: TEMPORAL_CONFIG_FILE is not inside the Temporal secret's mount")
    if not env.get("LAKEGATE_DATA_DIR", "").startswith(mounts.get("tmp", "?")):
        fail("deploy/k8s: LAKEGATE_DATA_DIR must be on the writable /tmp volume (the root filesystem is read-only)")
    for name in ("pipeline", "contracts", "temporal", "tmp"):
        if name not in volumes:
            fail(f"deploy/k8s/deployment.yaml: no volume {name}")

    # One metrics port everywhere.
    port = env.get("LAKEGATE_METRICS_ADDR", "").rsplit(":", 1)[-1]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if str(ports.get("metrics")) != port:
        fail(f"deploy/k8s: LAKEGATE_METRICS_ADDR port {port} is not the container's metrics port {ports.get('metrics')}")


def check_pipeline(tf) -> dict:
    """deploy/k8s/pipeline.yaml has PipelineSettings' fields and agrees with Terraform and the dbt image."""
    p = yaml.safe_load((K8S / "pipeline.yaml").read_text())
    required = {"crawler_prefix", "database", "quiet_period_secs", "max_wait_secs", "poll_initial_secs",
                "poll_max_secs", "crawl_deadline_secs", "transforms"}
    for key in sorted(required - set(p)):
        fail(f"deploy/k8s/pipeline.yaml: missing {key} (models/src/pipeline.rs)")
    variables = tf_variables(tf)
    if p.get("crawler_prefix") != default(variables, "crawler_prefix"):
        fail("deploy/k8s/pipeline.yaml: crawler_prefix differs from deploy/terraform's crawler_prefix")
    if p.get("database") != default(variables, "glue_database"):
        fail("deploy/k8s/pipeline.yaml: database differs from deploy/terraform's glue_database")
    datasets = set(default(variables, "datasets"))
    contract_datasets = {yaml.safe_load(c.read_text()).get("dataset")
                         for c in (ROOT / "examples/ehr/contracts").glob("*.yaml")}
    if not contract_datasets <= datasets:
        fail(f"deploy/terraform: datasets lacks crawlers for {sorted(contract_datasets - datasets)} (contracts declare them)")

    dockerfile = (DEPLOY / "docker/dbt.Dockerfile").read_text()
    m = re.search(r"^COPY \$\{DBT_PROJECT\} (\S+)$", dockerfile, re.M)
    image_dir = m.group(1) if m else None
    if not image_dir:
        fail("deploy/docker/dbt.Dockerfile: no `COPY ${DBT_PROJECT} <dir>` line")
    project = ROOT / re.search(r"^ARG DBT_PROJECT=(\S+)$", dockerfile, re.M).group(1)
    profiles = yaml.safe_load((project / "profiles.yml").read_text())
    outputs = next(iter(profiles.values()))["outputs"]
    for name, t in p.get("transforms", {}).items():
        where = f"deploy/k8s/pipeline.yaml: transforms.{name}"
        for key in ("dataset", "project_dir", "profiles_dir", "target", "stages", "max_attempts",
                    "poll_initial_secs", "poll_max_secs"):
            if key not in t:
                fail(f"{where}: missing {key}")
        for key in ("project_dir", "profiles_dir"):
            if t.get(key) != image_dir:
                fail(f"{where}.{key}={t.get(key)} is not where the dbt image has the project ({image_dir})")
        if t.get("target") not in outputs:
            fail(f"{where}.target={t.get('target')} is not an output of {project.relative_to(ROOT)}/profiles.yml")
        for stage in t.get("stages", []):
            if not (project / "models" / stage).is_dir():
                fail(f"{where}: stage {stage} has no folder models/{stage} in {project.relative_to(ROOT)}")
        if t.get("dataset") not in datasets:
            fail(f"{where}: dataset {t.get('dataset')} has no crawler in deploy/terraform")
    return outputs


def check_batch_env(tf, profile_outputs: dict) -> None:
    """The Batch job definition sets every variable the dbt profile's athena output needs."""
    jobdef = tf_resources(tf, "aws_batch_job_definition").get("dbt")
    if not jobdef:
        fail("deploy/terraform: no aws_batch_job_definition.dbt")
        return
    props = jobdef["container_properties"]
    given = set(re.findall(r"name\s*[:=]\s*\\?\"([A-Z0-9_]+)\\?\"", json.dumps(props)))
    athena = json.dumps(profile_outputs.get("athena", {}))
    needed = set(re.findall(r"env_var\('([A-Z0-9_]+)'\)", athena))  # no default: must be set
    optional = set(re.findall(r"env_var\('([A-Z0-9_]+)',", athena))
    for name in sorted(needed - given):
        fail(f"deploy/terraform/batch.tf: the job definition does not set {name}, which the athena profile requires")
    for name in sorted(given - needed - optional - {"AWS_REGION", "LAKEGATE_DBT_TARGET"}):
        fail(f"deploy/terraform/batch.tf: the job definition sets {name}, which the dbt profile never reads")
    if "awslogs-group" in json.dumps(props) and "/aws/batch/job" not in json.dumps(props):
        fail("deploy/terraform/batch.tf: logs must go to /aws/batch/job, the group the worker's policy may read")


def check_dbt_image() -> None:
    """The image's dbt is the one CI tests the project with, and every package is pinned."""
    def pins(path: Path) -> dict[str, str]:
        out = {}
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if "==" not in line:
                fail(f"{path.relative_to(ROOT)}: {line} is not pinned with ==")
                continue
            name, version = line.split("==", 1)
            out[re.sub(r"\[.*\]", "", name).lower()] = version
        return out

    image = pins(DEPLOY / "docker/dbt-requirements.txt")
    dev = pins(ROOT / "requirements.txt")
    if image.get("dbt-core") != dev.get("dbt-core"):
        fail(f"deploy/docker/dbt-requirements.txt: dbt-core {image.get('dbt-core')} differs from requirements.txt's {dev.get('dbt-core')}")
    if "dbt-athena" not in image:
        fail("deploy/docker/dbt-requirements.txt: no dbt-athena")


def check_transform_command() -> None:
    """The entrypoint documents and accepts the command TransformWorkflow builds."""
    src = (ROOT / "workflows/src/transform.rs").read_text()
    entry = (DEPLOY / "docker/dbt-entrypoint.sh").read_text()
    for token in ('"dbt"', '"build"', '"--select"', '"retry"', 'path:models/{stage}',
                  '"--project-dir"', '"--profiles-dir"', '"--target"'):
        if token not in src:
            fail(f"workflows/src/transform.rs no longer builds {token}: update deploy/docker/dbt-entrypoint.sh and this check")
    for token in ("dbt build --select path:models/<stage>", "--project-dir", "--profiles-dir", "--target", "dbt retry"):
        if token not in entry:
            fail(f"deploy/docker/dbt-entrypoint.sh: does not describe `{token}`")


def check_temporal_secret(deployment: dict) -> None:
    secret = yaml.safe_load((K8S / "temporal-secret.example.yaml").read_text())
    files = set(secret.get("stringData", {}))
    env = read_env_file(K8S / "worker.env")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["temporal"]
    if Path(env["TEMPORAL_CONFIG_FILE"]).name not in files:
        fail("deploy/k8s/temporal-secret.example.yaml: has no key for TEMPORAL_CONFIG_FILE")
    toml_text = secret["stringData"].get("temporal.toml", "")
    if f"[profile.{env['TEMPORAL_PROFILE']}]" not in toml_text:
        fail(f"deploy/k8s/temporal-secret.example.yaml: temporal.toml has no profile {env['TEMPORAL_PROFILE']}")
    for path in re.findall(r'_path = "([^"]+)"', toml_text):
        if Path(path).parent.as_posix() != mount or Path(path).name not in files:
            fail(f"deploy/k8s/temporal-secret.example.yaml: {path} is not a key of this Secret under {mount}")


def main() -> int:
    tf = load_tf()
    rendered = list(yaml.safe_load_all((K8S / "deployment.yaml").read_text()))
    deployment = next(d for d in rendered if d and d.get("kind") == "Deployment")
    check_iam_templates(tf)
    check_worker_env(tf, deployment)
    outputs = check_pipeline(tf)
    check_batch_env(tf, outputs)
    check_dbt_image()
    check_transform_command()
    check_temporal_secret(deployment)
    for f in failures:
        print(f"FAIL {f}")
    print(f"deploy cross-checks: {'ok' if not failures else f'{len(failures)} failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
