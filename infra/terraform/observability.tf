# The ADOT collector's side of AWS (k8s/base/adot-collector.yaml): the log group its EMF export
# writes the platform's metrics into (CloudWatch extracts the metrics from it), encrypted with a
# key of its own, and the collector's IRSA role, which may only write traces to X-Ray and log
# events into that one log group.

resource "aws_kms_key" "telemetry" {
  description             = "mvno ${var.environment}: the collector's metric log group"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      local.key_administration_statement,
      {
        Sid       = "CloudWatchLogsForTheMetricLogGroupOnly"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnEquals = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:${local.metric_log_group}"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "telemetry" {
  name          = "alias/mvno-${var.environment}-telemetry"
  target_key_id = aws_kms_key.telemetry.key_id
}

locals {
  # The collector's awsemf exporter writes here (log_group_name in adot-collector.yaml).
  metric_log_group = "/mvno/metrics"
  # CloudWatch namespace of every platform metric (mvno.common.metric_catalog.NAMESPACE).
  metric_namespace = "MVNO"
}

resource "aws_cloudwatch_log_group" "metrics" {
  name              = local.metric_log_group
  retention_in_days = 400
  kms_key_id        = aws_kms_key.telemetry.arn
}

data "aws_iam_policy_document" "assume_from_collector" {
  statement {
    sid     = "CollectorServiceAccountOnly"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_url}:sub"
      values   = ["system:serviceaccount:${var.kubernetes_namespace}:adot-collector"]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "collector" {
  # The name k8s/ annotates the collector's service account with.
  name                 = "mvno-adot-collector"
  description          = "mvno ${var.environment}: the ADOT collector (IRSA)"
  assume_role_policy   = data.aws_iam_policy_document.assume_from_collector.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "collector" {
  # What the awsxray exporter calls (and its sampling client); X-Ray has no resource-level
  # permissions for these actions, so they cannot be narrowed below "*".
  statement {
    sid    = "WriteTracesToXRay"
    effect = "Allow"
    actions = [
      "xray:PutTraceSegments",
      "xray:PutTelemetryRecords",
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
      "xray:GetSamplingStatisticSummaries",
    ]
    resources = ["*"]
  }

  # The awsemf exporter's log streams, in the metric log group only. No CreateLogGroup: the group
  # is created here, not by the collector.
  statement {
    sid       = "WriteMetricLogEventsToItsLogGroupOnly"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = [aws_cloudwatch_log_group.metrics.arn, "${aws_cloudwatch_log_group.metrics.arn}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "collector" {
  name   = "mvno-adot-collector-least-privilege"
  role   = aws_iam_role.collector.id
  policy = data.aws_iam_policy_document.collector.json
}

output "collector_role_arn" {
  description = "IAM role ARN for the ADOT collector's service account (eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.collector.arn
}
