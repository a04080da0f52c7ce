# Each service's own PostgreSQL (DESIGN.md: no service reads another's database): RDS for
# PostgreSQL 16, encrypted with the database key, Multi-AZ, automated backups with point-in-time
# recovery, private subnets only, TLS required, IAM authentication available, master password
# generated and rotated by RDS in Secrets Manager (never in this repository or in state).
# The services' connection URLs come from Secrets Manager into Kubernetes Secrets per environment.
# Only services that keep state (local.stateful_services): the canary has no database.

resource "aws_db_subnet_group" "services" {
  name        = "mvno-${var.environment}-databases"
  description = "mvno ${var.environment}: private database subnets"
  subnet_ids  = var.database_subnet_ids
}

resource "aws_security_group" "database" {
  name        = "mvno-${var.environment}-databases"
  description = "mvno ${var.environment}: PostgreSQL reachable from the EKS nodes only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "database_from_eks" {
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the EKS nodes"
  referenced_security_group_id = var.eks_node_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_db_parameter_group" "postgres" {
  name        = "mvno-${var.environment}-postgres16"
  family      = "postgres16"
  description = "mvno ${var.environment}: TLS only, statement and connection logging"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  parameter {
    # Statements slower than 500 ms, never their parameters' values (personal data).
    name  = "log_min_duration_statement"
    value = "500"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "mvno-${var.environment}-rds-enhanced-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "service" {
  for_each = local.stateful_services

  identifier     = "mvno-${var.environment}-${each.key}"
  engine         = "postgres"
  engine_version = "16"
  instance_class = var.database_instance_class
  db_name        = "mvno_${replace(each.key, "-", "_")}"
  username       = "mvno_admin"

  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.database.arn

  allocated_storage     = var.database_allocated_storage_gb
  max_allocated_storage = var.database_allocated_storage_gb * 10
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.database.arn

  multi_az               = true
  db_subnet_group_name   = aws_db_subnet_group.services.name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.postgres.name

  iam_database_authentication_enabled = true

  backup_retention_period   = var.database_backup_retention_days
  backup_window             = "01:00-02:00"
  maintenance_window        = "sun:02:30-sun:03:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  deletion_protection       = true
  skip_final_snapshot       = false
  final_snapshot_identifier = "mvno-${var.environment}-${each.key}-final"

  auto_minor_version_upgrade      = true
  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]
  monitoring_interval             = 30
  monitoring_role_arn             = aws_iam_role.rds_monitoring.arn

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.database.arn
  performance_insights_retention_period = 7

  tags = { "mvno:service" = each.key }
}
