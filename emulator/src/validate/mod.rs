//! Validation of request bodies the way APIM validates them, independent of HTTP.
//!
//! `xml` parses policy documents (both `xml` and `rawxml` formats) with positions; `policy`
//! applies APIM's policy rules and the minimal normalisation of stored policies; `backend`
//! checks backends and pools and parses ISO-8601 durations. The ARM layer turns the
//! `FieldError`s and policy issues into `400 ValidationError` envelopes.

pub mod backend;
pub mod policy;
pub mod xml;

/// A problem with one field of a request body.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The field, e.g. `pool.services[2].priority`.
    pub target: String,
    pub message: String,
}
