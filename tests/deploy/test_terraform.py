"""Checks of infra/terraform: formatting, checkov, references, and least privilege per service.

No provider can be downloaded here, so `terraform validate` and `plan` cannot run: the
formatting check is terraform's own (`terraform fmt -check`), the compliance scan is checkov's,
and the IAM policies are proved against the bus topology by reading the generated file.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mvno.billing_sync.settings import BillingSyncSettings
from mvno.common.bus.access import (
    USAGE_FILES,
    FileDrop,
    ServiceAccess,
    check_services,
    platform_services,
)
from mvno.common.bus.topology import Topology, TopologyError, platform_topology

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "infra" / "terraform"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GENERATED = TERRAFORM / "bus.tf.json"


def generated() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(GENERATED.read_text())
    return document


def hand_written() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(TERRAFORM.glob("*.tf"))}


# --- terraform fmt -----------------------------------------------------------------------------


def terraform_binary() -> str:
    binary = shutil.which("terraform") or shutil.which("tofu")
    if binary is None:
        # No registry offers a terraform binary; CI's machine has one. Say so loudly there.
        if os.environ.get("CI"):
            pytest.fail("no terraform (or tofu) binary on the CI machine")
        pytest.skip("no terraform or tofu binary on this machine: formatting not checked")
    return binary


def terraform_fmt_check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [terraform_binary(), "fmt", "-check", "-recursive", "-diff", "-no-color", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_terraform_is_formatted() -> None:
    result = terraform_fmt_check(TERRAFORM)
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_fmt_check_rejects_a_badly_formatted_file() -> None:
    result = terraform_fmt_check(FIXTURES / "terraform-unformatted")
    assert result.returncode != 0
    assert "main.tf" in result.stdout


# --- checkov -----------------------------------------------------------------------------------


def test_checkov_passes_the_terraform_with_every_skip_explained(checkov: Any) -> None:
    report = checkov("terraform", TERRAFORM)
    assert not report.failed, report.describe_failures()
    assert not report.unexplained_skips()
    assert report.passed >= 50, "checkov read too little of the module"


def test_checkov_fails_insecure_terraform(insecure_fixtures_report: Any) -> None:
    report = insecure_fixtures_report.of(FIXTURES / "terraform-insecure" / "main.tf")
    assert {
        "CKV_AWS_7",  # KMS key rotation off
        "CKV_AWS_27",  # queue not encrypted
        "CKV_AWS_17",  # database publicly accessible
        "CKV_AWS_16",  # database storage not encrypted
        "CKV_AWS_157",  # database not Multi-AZ
        "CKV_AWS_145",  # bucket not encrypted with KMS
        "CKV_AWS_21",  # bucket not versioned
        "CKV2_AWS_6",  # bucket without a public access block
        "CKV2_AWS_61",  # bucket without a lifecycle
    } <= report.failed_ids(), report.describe_failures()


def test_a_skip_without_a_reason_is_caught(insecure_fixtures_report: Any) -> None:
    report = insecure_fixtures_report.of(FIXTURES / "terraform-unexplained-skip" / "main.tf")
    assert report.unexplained_skips() == ["CKV_AWS_27 on aws_sqs_queue.unencrypted"]


# --- the module holds together -----------------------------------------------------------------


def test_every_local_and_variable_referenced_is_declared() -> None:
    texts = hand_written()
    everything = "\n".join(texts.values()) + GENERATED.read_text()
    declared_variables = set(re.findall(r'^variable "(\w+)"', texts["variables.tf"], re.M))
    declared_locals = set(generated()["locals"])
    for text in texts.values():
        for block in re.findall(r"^locals \{\n(.*?)^\}", text, re.M | re.S):
            declared_locals |= set(re.findall(r"^  (\w+)\s*=", block, re.M))
    used_variables = set(re.findall(r"\bvar\.(\w+)", everything))
    used_locals = set(re.findall(r"\blocal\.(\w+)", everything))
    assert used_variables <= declared_variables, used_variables - declared_variables
    assert used_locals <= declared_locals, used_locals - declared_locals
    declared_resources = {
        f"{kind}.{name}"
        for text in texts.values()
        for kind, name in re.findall(r'^(?:resource|data) "(\w+)" "(\w+)"', text, re.M)
    } | {
        f"{kind}.{name}"
        for kind, resources in generated()["resource"].items()
        for name in resources
    }
    used = set(re.findall(r"\b(aws_[a-z0-9_]+\.[a-z0-9_]+)\b", everything))
    assert used <= declared_resources, used - declared_resources


def variables() -> dict[str, str]:
    """Each declared variable and its block's body."""
    text = hand_written()["variables.tf"]
    return dict(re.findall(r'^variable "(\w+)" \{\n(.*?)^\}', text, re.M | re.S))


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_environment_values_set_every_required_variable_and_nothing_unknown(
    environment: str,
) -> None:
    text = (TERRAFORM / "environments" / f"{environment}.tfvars").read_text()
    assigned = dict(re.findall(r"^(\w+)\s*=\s*(.+)$", text, re.M))
    declared = variables()
    required = {name for name, body in declared.items() if "default" not in body}
    assert required <= set(assigned), required - set(assigned)
    assert set(assigned) <= set(declared), set(assigned) - set(declared)
    assert assigned["environment"] == f'"{environment}"'
    subnets = re.findall(r'"(subnet-[0-9a-f]+)"', assigned["database_subnet_ids"])
    assert len(set(subnets)) >= 2, "Multi-AZ needs subnets in two zones"
    assert int(assigned["database_backup_retention_days"]) >= 7


def test_each_service_has_a_role_key_and_database_for_its_service_account() -> None:
    texts = hand_written()
    for kind in ("aws_iam_role", "aws_kms_key", "aws_db_instance", "aws_iam_role_policy"):
        block = re.search(rf'^resource "{kind}" "(?:service|personal_data)" \{{\n(.*?)^\}}', "\n".join(texts.values()), re.M | re.S)  # fmt: skip
        assert block, kind
        # Roles for every service; a database and a personal-data key only for those with state.
        each = "local.services" if kind.startswith("aws_iam") else "local.stateful_services"
        assert f"for_each = {each}" in block.group(1), kind
    assert set(generated()["locals"]["services"]) == {s.service for s in platform_services()}
    assert set(generated()["locals"]["stateful_services"]) == {
        s.service for s in platform_services() if not s.stateless
    }
    trust = texts["iam.tf"]
    assert '"system:serviceaccount:${var.kubernetes_namespace}:${each.key}"' in trust
    assert 'name                 = "mvno-${each.key}"' in trust


def test_kubernetes_service_accounts_name_the_terraform_roles() -> None:
    for access in platform_services():
        docs = yaml.safe_load_all((ROOT / "k8s" / "base" / f"{access.service}.yaml").read_text())
        (account,) = [d for d in docs if d and d["kind"] == "ServiceAccount"]
        assert account["metadata"]["name"] == access.service
        arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        assert arn.endswith(f":role/mvno-{access.service}")


def test_databases_are_encrypted_private_multi_az_and_backed_up() -> None:
    rds = hand_written()["rds.tf"]
    for setting in (
        "storage_encrypted     = true",
        "kms_key_id            = aws_kms_key.database.arn",
        "multi_az               = true",
        "publicly_accessible    = false",
        "backup_retention_period   = var.database_backup_retention_days",
        "deletion_protection       = true",
        "manage_master_user_password   = true",
    ):
        assert setting in rds, setting
    assert "password " not in rds.replace("manage_master_user_password", "")


def test_every_kms_key_rotates() -> None:
    text = "\n".join(hand_written().values())
    keys = re.findall(r'^resource "aws_kms_key" "(\w+)" \{\n(.*?)^\}', text, re.M | re.S)
    assert {name for name, _ in keys} == {
        "bus",
        "database",
        "personal_data",
        "usage_files",
        "telemetry",
    }
    for name, body in keys:
        assert "enable_key_rotation     = true" in body, name
    for queue in generated()["resource"]["aws_sqs_queue"].values():
        assert queue["kms_master_key_id"] == "${aws_kms_key.bus.arn}"


def test_alarms_cover_every_dlq_and_queue_age_and_notify_the_alarm_topic() -> None:
    alarms = hand_written()["alarms.tf"]
    assert set(generated()["locals"]["bus_queues"]) == {
        q.consumer for q in platform_topology().queues
    }
    for name in ("dlq_not_empty", "queue_age", "http_5xx_rate"):
        body = re.search(
            rf'^resource "aws_cloudwatch_metric_alarm" "{name}" \{{\n(.*?)^\}}', alarms, re.M | re.S
        )
        assert body, name
        assert "alarm_actions       = [aws_sns_topic.alarms.arn]" in body.group(1), name
    assert "dimensions          = { QueueName = each.value.dlq_name }" in alarms
    assert "ApproximateAgeOfOldestMessage" in alarms
    assert "HTTPCode_Target_5XX_Count" in alarms


# --- least privilege, proved from the topology -------------------------------------------------

Grant = tuple[str, str]  # (action, resource)


def needed(access: ServiceAccess, topology: Topology) -> set[Grant]:
    """What a service needs, worked out here from the topology and the bus code's AWS calls,
    independently of the generator."""
    grants: set[Grant] = set()
    for producer in access.publishes:
        topology.topic(producer)  # KeyError for a producer not in the topology
        grants.add(("sns:Publish", f"${{aws_sns_topic.{producer.replace('-', '_')}.arn}}"))
        grants.add(("sns:ListTopics", "*"))
        grants |= {
            ("kms:GenerateDataKey", "${aws_kms_key.bus.arn}"),
            ("kms:Decrypt", "${aws_kms_key.bus.arn}"),
        }
    for consumer in access.consumes:
        topology.queue(consumer)
        label = consumer.replace("-", "_")
        for action in ("ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility"):
            grants.add((f"sqs:{action}", f"${{aws_sqs_queue.{label}.arn}}"))
        for queue in (label, f"{label}_dlq"):
            grants.add(("sqs:GetQueueUrl", f"${{aws_sqs_queue.{queue}.arn}}"))
            grants.add(("sqs:GetQueueAttributes", f"${{aws_sqs_queue.{queue}.arn}}"))
        grants.add(("kms:Decrypt", "${aws_kms_key.bus.arn}"))
    for drop in access.reads_file_drops:
        grants |= file_drop_grants(drop)
    if not access.stateless:
        key = f'${{aws_kms_key.personal_data["{access.service}"].arn}}'
        grants |= {("kms:GenerateDataKey", key), ("kms:Decrypt", key), ("kms:DescribeKey", key)}
    return grants


# What reading a file drop takes, by the AWS operation the reader's code calls (IAM authorises
# HeadObject as s3:GetObject).
FILE_DROP_OPERATIONS = {
    "head_object": "s3:GetObject",
    "get_object": "s3:GetObject",
    "get_queue_url": "sqs:GetQueueUrl",
    "receive_message": "sqs:ReceiveMessage",
    "delete_message": "sqs:DeleteMessage",
}


def file_drop_grants(drop: FileDrop) -> set[Grant]:
    label = drop.name.replace("-", "_")
    objects = f"${{aws_s3_bucket.{label}.arn}}/*"
    queue = f"${{aws_sqs_queue.{label}.arn}}"
    grants = {
        (action, objects if action.startswith("s3:") else queue)
        for action in FILE_DROP_OPERATIONS.values()
    }
    # Objects and notifications are encrypted with the drop's key: decrypted through S3 and SQS.
    grants.add(("kms:Decrypt", f"${{aws_kms_key.{label}.arn}}"))
    return grants


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def granted(policy: dict[str, Any]) -> Iterator[tuple[Grant, dict[str, Any]]]:
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                yield (action, resource), statement.get("Condition", {})


def least_privilege_violations(
    access: ServiceAccess, policy: dict[str, Any], topology: Topology
) -> list[str]:
    """Everything the policy grants beyond what the service's topology entry needs."""
    violations = []
    need = needed(access, topology)
    for grant, condition in granted(policy):
        action, resource = grant
        if grant not in need:
            violations.append(f"{action} on {resource} is not needed")
        if "*" in action or (resource == "*" and action != "sns:ListTopics"):
            violations.append(f"wildcard grant {action} on {resource}")
        if resource == "${aws_kms_key.bus.arn}":
            via = condition.get("StringEquals", {}).get("kms:ViaService", "")
            if not re.fullmatch(r"(sns|sqs)\.\$\{var\.region\}\.amazonaws\.com", via):
                violations.append(f"{action} on the bus key not limited to SNS/SQS")
        drop_keys = {
            f"${{aws_kms_key.{d.name.replace('-', '_')}.arn}}" for d in access.reads_file_drops
        }
        if resource in drop_keys:
            via = condition.get("StringEquals", {}).get("kms:ViaService", [])
            if sorted(as_list(via)) != ["s3.${var.region}.amazonaws.com", "sqs.${var.region}.amazonaws.com"]:  # fmt: skip
                violations.append(f"{action} on a file drop's key not limited to S3/SQS")
    missing = need - {grant for grant, _ in granted(policy)}
    violations += [f"{action} on {resource} is missing" for action, resource in sorted(missing)]
    return violations


@pytest.mark.parametrize("access", platform_services(), ids=lambda a: a.service)
def test_service_policy_grants_exactly_what_its_topology_entry_needs(access: ServiceAccess) -> None:
    policy = generated()["locals"]["service_iam_policies"][access.service]
    assert least_privilege_violations(access, policy, platform_topology()) == []


def test_policy_check_catches_a_grant_on_another_services_queue() -> None:
    # Guards the test above: widen portal-api's policy to orders' queue, and to everything.
    services = {s.service: s for s in platform_services()}
    policy = json.loads(json.dumps(generated()["locals"]["service_iam_policies"]["portal-api"]))
    policy["Statement"][0]["Resource"].append("${aws_sqs_queue.orders.arn}")
    policy["Statement"].append({"Effect": "Allow", "Action": "sqs:*", "Resource": "*"})
    violations = least_privilege_violations(services["portal-api"], policy, platform_topology())
    assert "sqs:ReceiveMessage on ${aws_sqs_queue.orders.arn} is not needed" in violations
    assert "wildcard grant sqs:* on * is not needed" not in violations
    assert "wildcard grant sqs:* on *" in violations


def test_policy_check_catches_a_missing_grant() -> None:
    services = {s.service: s for s in platform_services()}
    policy = json.loads(json.dumps(generated()["locals"]["service_iam_policies"]["catalog"]))
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "PublishToOwnTopics"]
    violations = least_privilege_violations(services["catalog"], policy, platform_topology())
    assert violations == ["sns:Publish on ${aws_sns_topic.catalog.arn} is missing"]


def test_every_topic_and_queue_belongs_to_exactly_one_service() -> None:
    topology = platform_topology()
    services = platform_services()
    assert sorted(p for s in services for p in s.publishes) == sorted(
        t.producer for t in topology.topics
    )
    assert sorted(c for s in services for c in s.consumes) == sorted(
        q.consumer for q in topology.queues
    )


def test_the_autoscaler_may_only_read_the_depth_of_the_worker_queues() -> None:
    policy = generated()["locals"]["autoscaler_iam_policy"]
    grants = {grant for grant, _ in granted(policy)}
    assert grants == {
        ("sqs:GetQueueAttributes", f"${{aws_sqs_queue.{q.consumer.replace('-', '_')}.arn}}")
        for q in platform_topology().queues
    } | {("sqs:GetQueueAttributes", "${aws_sqs_queue.usage_files.arn}")}
    iam = hand_written()["iam.tf"]
    assert "policy = jsonencode(local.autoscaler_iam_policy)" in iam
    assert '"system:serviceaccount:${var.keda_namespace}:${var.keda_service_account}"' in iam


# --- billing-sync's usage files ----------------------------------------------------------------


def test_billing_sync_reads_exactly_the_usage_file_drop() -> None:
    (access,) = [a for a in platform_services() if a.service == "billing-sync"]
    assert access.reads_file_drops == (USAGE_FILES,)
    assert [d for a in platform_services() if a.service != "billing-sync" for d in a.reads_file_drops] == []  # fmt: skip
    # The queue names are billing-sync's own: its setting, and the DLQ its local set-up creates.
    settings = BillingSyncSettings()
    assert USAGE_FILES.queue_name == settings.usage_files_queue
    assert USAGE_FILES.dlq_name == settings.usage_files_queue + "-dlq"
    drop = generated()["locals"]["file_drops"]["usage-files"]
    assert drop["reader"] == "billing-sync"
    assert (drop["queue_name"], drop["dlq_name"]) == (USAGE_FILES.queue_name, USAGE_FILES.dlq_name)
    assert drop["max_receive_count"] >= 5


def aws_operations(path: Path, *, skip: set[str]) -> set[str]:
    """Methods the module calls on an ``s3``/``sqs`` client, outside the functions in ``skip``."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in skip:
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if name.lstrip("_") in {"s3", "sqs"}:
                found.add(node.func.attr)
    return found


def test_the_usage_file_grants_are_what_billing_sync_code_calls() -> None:
    # The AWS calls of billing-sync's worker on the bucket and its queue (the bucket's local
    # set-up, ensure_usage_bucket, runs only outside production: Terraform does that in AWS).
    package = ROOT / "services" / "billing-sync" / "src" / "mvno" / "billing_sync"
    calls = aws_operations(
        package / "usage_files.py", skip={"ensure_usage_bucket", "_queue_arn"}
    ) | aws_operations(package / "worker.py", skip=set())
    assert calls <= set(FILE_DROP_OPERATIONS), (
        f"IAM actions unknown for {calls - set(FILE_DROP_OPERATIONS)}"
    )
    needed_actions = {FILE_DROP_OPERATIONS[c] for c in calls}
    policy = generated()["locals"]["service_iam_policies"]["billing-sync"]
    on_the_drop = {
        action
        for (action, resource), _ in granted(policy)
        if "usage_files" in resource and not action.startswith("kms:")
    }
    assert on_the_drop == needed_actions
    assert "ensure_usage_bucket" not in (package / "worker.py").read_text()


def test_policy_check_catches_a_write_to_the_usage_files_bucket() -> None:
    services = {s.service: s for s in platform_services()}
    policy = json.loads(json.dumps(generated()["locals"]["service_iam_policies"]["billing-sync"]))
    for statement in policy["Statement"]:
        if statement["Sid"] == "ReadUsageFilesObjects":
            statement["Action"] = ["s3:GetObject", "s3:PutObject"]
        if statement["Sid"] == "DecryptUsageFilesThroughS3AndSqs":
            del statement["Condition"]
    violations = least_privilege_violations(services["billing-sync"], policy, platform_topology())
    assert violations == [
        "s3:PutObject on ${aws_s3_bucket.usage_files.arn}/* is not needed",
        "kms:Decrypt on a file drop's key not limited to S3/SQS",
    ]


def resource_block(kind: str, name: str) -> str:
    text = hand_written()["usage_files.tf"]
    block = re.search(rf'^resource "{kind}" "{name}" \{{\n(.*?)^\}}', text, re.M | re.S)
    assert block, f"{kind}.{name}"
    return block.group(1)


def test_usage_files_bucket_is_private_encrypted_versioned_tls_only_and_expires() -> None:
    key = resource_block("aws_kms_key", "usage_files")
    assert "enable_key_rotation     = true" in key
    assert 'Principal = { Service = "s3.amazonaws.com" }' in key
    encryption = resource_block("aws_s3_bucket_server_side_encryption_configuration", "usage_files")
    assert 'sse_algorithm     = "aws:kms"' in encryption
    assert "kms_master_key_id = aws_kms_key.usage_files.arn" in encryption
    assert 'status = "Enabled"' in resource_block("aws_s3_bucket_versioning", "usage_files")
    public = resource_block("aws_s3_bucket_public_access_block", "usage_files")
    for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):  # fmt: skip
        assert re.search(rf"{setting}\s+= true", public), setting
    policy = resource_block("aws_s3_bucket_policy", "usage_files")
    assert '"aws:SecureTransport" = "false"' in policy
    assert 'Effect    = "Deny"' in policy
    lifecycle = resource_block("aws_s3_bucket_lifecycle_configuration", "usage_files")
    assert "expiration {" in lifecycle
    assert "abort_incomplete_multipart_upload {" in lifecycle
    assert 'object_ownership = "BucketOwnerEnforced"' in resource_block(
        "aws_s3_bucket_ownership_controls", "usage_files"
    )


def test_usage_files_notifications_reach_only_billing_sync_queue_from_only_that_bucket() -> None:
    notification = resource_block("aws_s3_bucket_notification", "usage_files")
    assert "queue_arn = aws_sqs_queue.usage_files.arn" in notification
    assert 'events    = ["s3:ObjectCreated:*"]' in notification
    for name in ("usage_files", "usage_files_dlq"):
        queue = resource_block("aws_sqs_queue", name)
        assert "kms_master_key_id                 = aws_kms_key.usage_files.arn" in queue, name
    queue = resource_block("aws_sqs_queue", "usage_files")
    assert "name = local.usage_files.queue_name" in queue
    assert "deadLetterTargetArn = aws_sqs_queue.usage_files_dlq.arn" in queue
    assert "maxReceiveCount     = local.usage_files.max_receive_count" in queue
    allow = resource_block("aws_sqs_queue_redrive_allow_policy", "usage_files_dlq")
    assert "sourceQueueArns   = [aws_sqs_queue.usage_files.arn]" in allow
    policy = resource_block("aws_sqs_queue_policy", "usage_files")
    assert 'Principal = { Service = "s3.amazonaws.com" }' in policy
    assert 'Action    = "sqs:SendMessage"' in policy
    assert 'ArnEquals    = { "aws:SourceArn" = aws_s3_bucket.usage_files.arn }' in policy
    assert policy.count("Sid ") == 1, "one statement: only the bucket may send"
    alarms = hand_written()["usage_files.tf"]
    assert "dimensions          = { QueueName = local.usage_files.dlq_name }" in alarms


def test_a_file_drop_read_by_two_services_or_reusing_a_bus_queue_is_refused() -> None:
    services = list(platform_services())
    twice = [*services, ServiceAccess("intruder", reads_file_drops=(USAGE_FILES,))]
    with pytest.raises(TopologyError, match="exactly one reading service"):
        check_services(platform_topology(), twice)
    clash = FileDrop("clash", "mvno-orders-events", "mvno-clash-dlq")
    with pytest.raises(TopologyError, match="reuses a bus queue's name"):
        check_services(
            platform_topology(), [*services, ServiceAccess("x", reads_file_drops=(clash,))]
        )
    with pytest.raises(TopologyError, match="must retain messages longer"):
        FileDrop("short", "mvno-short", "mvno-short-dlq", dlq_retention_seconds=60)
