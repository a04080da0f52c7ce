variable "environment" {
  description = "Environment name (dev, prod); part of every resource name."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "region" {
  description = "AWS region of the platform."
  type        = string
  default     = "eu-west-1"
}

variable "kubernetes_namespace" {
  description = "Namespace the services run in; each service account is <namespace>/<service>."
  type        = string
  default     = "mvno"
}

variable "eks_oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider (IAM roles for service accounts)."
  type        = string
}

variable "eks_oidc_provider_url" {
  description = "Issuer URL of the EKS cluster's OIDC provider, without https://."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the EKS cluster and the databases."
  type        = string
}

variable "database_subnet_ids" {
  description = "Private subnets (one per availability zone) for the databases."
  type        = list(string)

  validation {
    condition     = length(var.database_subnet_ids) >= 2
    error_message = "Multi-AZ databases need subnets in at least two availability zones."
  }
}

variable "eks_node_security_group_id" {
  description = "Security group of the EKS nodes (or pods) allowed to reach the databases."
  type        = string
}

variable "database_instance_class" {
  description = "RDS instance class of each service's database."
  type        = string
  default     = "db.t4g.medium"
}

variable "database_allocated_storage_gb" {
  description = "Initial storage of each database, in GiB (storage autoscales up to 10x)."
  type        = number
  default     = 50
}

variable "database_backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery) kept per database."
  type        = number
  default     = 14

  validation {
    condition     = var.database_backup_retention_days >= 7
    error_message = "Keep at least 7 days of backups."
  }
}

variable "alarm_email_endpoints" {
  description = "Addresses subscribed to the alarm topic (confirmation needed); may be empty when the on-call tool subscribes itself."
  type        = list(string)
  default     = []
}

variable "alb_arn_suffixes" {
  description = "ARN suffix of the load balancer in front of each public service (from the ingress controller), for the 5xx alarms; a service without one gets no 5xx alarm."
  type        = map(string)
  default     = {}
}

variable "keda_namespace" {
  description = "Namespace KEDA's operator runs in."
  type        = string
  default     = "keda"
}

variable "keda_service_account" {
  description = "KEDA operator's service account; annotate it with the autoscaler_role_arn output."
  type        = string
  default     = "keda-operator"
}

variable "usage_file_writer_arns" {
  description = "IAM principals of the network operator allowed to write usage files into the bucket (and encrypt them through S3); none by default."
  type        = list(string)
  default     = []
}

variable "saga_failure_rate_percent" {
  description = "Share of finished orders that may fail in 5 minutes before the saga failure alarm goes off."
  type        = number
  default     = 5
}

variable "provisioning_p99_seconds" {
  description = "Ceiling of the completed orders' p99 time from capture to completion, in seconds."
  type        = number
  default     = 300
}
