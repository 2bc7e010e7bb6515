//! `POST /ingest`.
/// Placeholder until ingest lands.
#[derive(Clone)]
pub struct Ingest;
