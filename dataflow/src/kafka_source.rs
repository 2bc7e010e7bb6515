//! The Kafka source operator.
