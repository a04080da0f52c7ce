# Customer-managed keys, rotated yearly: one for the bus (topics and queues), one for the
# databases (storage, Performance Insights, the master passwords in Secrets Manager), and one per
# service for the personal data it seals with envelope encryption (mvno.common.crypto).
# Each key policy gives the account's administrators (through IAM) control, and lets the AWS
# services that encrypt with it use it on this account's behalf only; the services' own IAM roles
# (iam.tf) are granted use of the keys there, each only of its own.

locals {
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"

  key_administration_statement = {
    Sid       = "AccountAdministersThroughIam"
    Effect    = "Allow"
    Principal = { AWS = local.account_root }
    Action    = "kms:*"
    Resource  = "*"
  }
}

resource "aws_kms_key" "bus" {
  description             = "mvno ${var.environment}: event bus topics and queues"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      local.key_administration_statement,
      {
        # SNS encrypts published messages, and delivers to the encrypted queues; CloudWatch
        # publishes alarms to the encrypted alarm topic.
        Sid    = "AwsServicesOfThisAccount"
        Effect = "Allow"
        Principal = {
          Service = ["sns.amazonaws.com", "sqs.amazonaws.com", "cloudwatch.amazonaws.com"]
        }
        Action   = ["kms:GenerateDataKey*", "kms:Decrypt"]
        Resource = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "bus" {
  name          = "alias/mvno-${var.environment}-bus"
  target_key_id = aws_kms_key.bus.key_id
}

resource "aws_kms_key" "database" {
  description             = "mvno ${var.environment}: databases, their snapshots and master passwords"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      local.key_administration_statement,
      {
        Sid       = "RdsAndSecretsManagerOfThisAccount"
        Effect    = "Allow"
        Principal = { AWS = local.account_root }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"]
        Resource  = "*"
        Condition = {
          StringEquals = {
            "kms:ViaService" = [
              "rds.${var.region}.amazonaws.com",
              "secretsmanager.${var.region}.amazonaws.com",
            ]
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "database" {
  name          = "alias/mvno-${var.environment}-database"
  target_key_id = aws_kms_key.database.key_id
}

# Personal data (ID numbers, addresses, dates of birth, eSIM codes): a key per service that keeps
# state, so that a service's role can unseal only what that service sealed.
resource "aws_kms_key" "personal_data" {
  for_each = local.stateful_services

  description             = "mvno ${var.environment}: personal data sealed by ${each.key}"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [local.key_administration_statement]
  })

  tags = { "mvno:service" = each.key }
}

resource "aws_kms_alias" "personal_data" {
  for_each = local.stateful_services

  # The name each service's settings use (e.g. MVNO_PERSONAL_DATA_KMS_KEY=alias/mvno-orders-personal-data).
  name          = "alias/mvno-${each.key}-personal-data"
  target_key_id = aws_kms_key.personal_data[each.key].key_id
}
