output "service_role_arns" {
  description = "IAM role ARN by service: the eks.amazonaws.com/role-arn annotation of its service account."
  value       = { for name, role in aws_iam_role.service : name => role.arn }
}

output "database_endpoints" {
  description = "PostgreSQL endpoint (host:port) by service."
  value       = { for name, db in aws_db_instance.service : name => db.endpoint }
}

output "database_master_secret_arns" {
  description = "Secrets Manager ARN of each database's RDS-managed master password."
  value       = { for name, db in aws_db_instance.service : name => db.master_user_secret[0].secret_arn }
}

output "personal_data_key_aliases" {
  description = "KMS alias of each service's personal-data key."
  value       = { for name, alias in aws_kms_alias.personal_data : name => alias.name }
}

output "alarm_topic_arn" {
  description = "SNS topic the CloudWatch alarms notify."
  value       = aws_sns_topic.alarms.arn
}

output "autoscaler_role_arn" {
  description = "IAM role ARN for KEDA's operator service account (eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.autoscaler.arn
}

output "usage_files_bucket" {
  description = "Bucket the network operator drops usage files into: billing-sync's MVNO_USAGE_BUCKET."
  value       = aws_s3_bucket.usage_files.bucket
}

output "usage_files_queue_url" {
  description = "Queue of the bucket's object-created notifications (KEDA scales billing-sync-work on it)."
  value       = aws_sqs_queue.usage_files.id
}
