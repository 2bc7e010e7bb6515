//! The series store operator.
