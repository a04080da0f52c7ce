# The network operator's usage files (a file drop, mvno.common.bus.access.USAGE_FILES): a private
# bucket the operator writes to, encrypted with a key of its own, whose object-created
# notifications go to billing-sync's queue (with a DLQ). The names and the queue's timings come
# from local.file_drops in bus.tf.json; billing-sync's IAM policy there may read the objects,
# receive and delete the notifications and decrypt through S3 and SQS, nothing more.

locals {
  usage_files = local.file_drops["usage-files"]

  # Bucket names are global: the environment and the account keep them apart. billing-sync's
  # MVNO_USAGE_BUCKET (k8s overlays) is this name, the usage_files_bucket output.
  usage_files_bucket = "mvno-${var.environment}-usage-files-${data.aws_caller_identity.current.account_id}"

  # The operator's principals may write objects; none until the environment names them.
  usage_file_writer_statements = length(var.usage_file_writer_arns) == 0 ? [] : [
    {
      Sid       = "OperatorWritesUsageFiles"
      Effect    = "Allow"
      Principal = { AWS = var.usage_file_writer_arns }
      Action    = ["s3:PutObject"]
      Resource  = "${aws_s3_bucket.usage_files.arn}/*"
    },
  ]
  usage_file_writer_key_statements = length(var.usage_file_writer_arns) == 0 ? [] : [
    {
      Sid       = "OperatorEncryptsThroughS3"
      Effect    = "Allow"
      Principal = { AWS = var.usage_file_writer_arns }
      Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
      Resource  = "*"
      Condition = { StringEquals = { "kms:ViaService" = "s3.${var.region}.amazonaws.com" } }
    },
  ]
}

resource "aws_kms_key" "usage_files" {
  description             = "mvno ${var.environment}: usage files and their notifications"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      local.key_administration_statement,
      {
        # S3 sends object-created notifications to the encrypted queue.
        Sid       = "S3NotifiesTheEncryptedQueue"
        Effect    = "Allow"
        Principal = { Service = "s3.amazonaws.com" }
        Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        }
      },
    ], local.usage_file_writer_key_statements)
  })

  tags = { "mvno:service" = local.usage_files.reader }
}

resource "aws_kms_alias" "usage_files" {
  name          = "alias/mvno-${var.environment}-usage-files"
  target_key_id = aws_kms_key.usage_files.key_id
}

resource "aws_s3_bucket" "usage_files" {
  #checkov:skip=CKV_AWS_18:Server access logs would need a log bucket that SSE-KMS cannot encrypt; object reads and writes of this bucket are to be recorded as CloudTrail S3 data events by the organisation trail the platform team runs (a deployment requirement in the README)
  #checkov:skip=CKV_AWS_144:No cross-region replica: the files are transient input (expired after 90 days) and what billing-sync ingested from them lives in its backed-up database
  bucket = local.usage_files_bucket

  tags = { "mvno:service" = local.usage_files.reader }
}

resource "aws_s3_bucket_ownership_controls" "usage_files" {
  bucket = aws_s3_bucket.usage_files.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "usage_files" {
  bucket                  = aws_s3_bucket.usage_files.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "usage_files" {
  bucket = aws_s3_bucket.usage_files.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "usage_files" {
  bucket = aws_s3_bucket.usage_files.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.usage_files.arn
    }
    bucket_key_enabled = true
  }
}

# Ingested files are kept 90 days (for disputes), replaced versions 30 days.
resource "aws_s3_bucket_lifecycle_configuration" "usage_files" {
  bucket = aws_s3_bucket.usage_files.id

  rule {
    id     = "expire-ingested-usage-files"
    status = "Enabled"

    filter {}

    expiration {
      days = 90
    }

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.usage_files]
}

resource "aws_s3_bucket_policy" "usage_files" {
  bucket = aws_s3_bucket.usage_files.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.usage_files.arn, "${aws_s3_bucket.usage_files.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ], local.usage_file_writer_statements)
  })

  depends_on = [aws_s3_bucket_public_access_block.usage_files]
}

resource "aws_sqs_queue" "usage_files_dlq" {
  name                              = local.usage_files.dlq_name
  message_retention_seconds         = local.usage_files.dlq_message_retention_seconds
  kms_master_key_id                 = aws_kms_key.usage_files.arn
  kms_data_key_reuse_period_seconds = 300

  tags = { "mvno:service" = local.usage_files.reader, "mvno:dead-letter" = "true" }
}

resource "aws_sqs_queue" "usage_files" {
  name = local.usage_files.queue_name
  # An ingestion of a large file may take minutes; a crashed worker's file is retaken after this.
  visibility_timeout_seconds        = local.usage_files.visibility_timeout_seconds
  receive_wait_time_seconds         = 20
  message_retention_seconds         = local.usage_files.message_retention_seconds
  kms_master_key_id                 = aws_kms_key.usage_files.arn
  kms_data_key_reuse_period_seconds = 300
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.usage_files_dlq.arn
    maxReceiveCount     = local.usage_files.max_receive_count
  })

  tags = { "mvno:service" = local.usage_files.reader }
}

resource "aws_sqs_queue_redrive_allow_policy" "usage_files_dlq" {
  queue_url = aws_sqs_queue.usage_files_dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.usage_files.arn]
  })
}

# Only S3, and only for this bucket in this account, may send to the queue.
resource "aws_sqs_queue_policy" "usage_files" {
  queue_url = aws_sqs_queue.usage_files.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "UsageFilesBucketOnly"
        Effect    = "Allow"
        Principal = { Service = "s3.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = aws_sqs_queue.usage_files.arn
        Condition = {
          ArnEquals    = { "aws:SourceArn" = aws_s3_bucket.usage_files.arn }
          StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        }
      },
    ]
  })
}

resource "aws_s3_bucket_notification" "usage_files" {
  bucket = aws_s3_bucket.usage_files.id

  queue {
    queue_arn = aws_sqs_queue.usage_files.arn
    events    = ["s3:ObjectCreated:*"]
  }

  # S3 checks it may send to the queue when the notification is set.
  depends_on = [aws_sqs_queue_policy.usage_files]
}

resource "aws_cloudwatch_metric_alarm" "usage_files_dead_letters" {
  alarm_name          = "mvno-${var.environment}-usage-files-dead-letters"
  alarm_description   = "A usage file's notification landed in ${local.usage_files.dlq_name} after ${local.usage_files.max_receive_count} failed ingestions: see billing-sync's logs, fix, and redrive it. Runbook: docs/runbooks/usage-files-dead-letters.md"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = local.usage_files.dlq_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "usage_files_queue_age" {
  alarm_name          = "mvno-${var.environment}-usage-files-queue-age"
  alarm_description   = "The oldest usage-file notification has waited over 15 minutes: billing-sync's work processes are down or too few. Runbook: docs/runbooks/usage-files-queue-age.md"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = local.usage_files.queue_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 900
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
