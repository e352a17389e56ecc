//! Typed helpers over the host's `arm` import: JSON in, JSON out.
//!
//! Paths are relative to the APIM service the host is configured for (`""` is the service,
//! `backends/aoai-pool`, `apis/inference-api/policies/policy?format=rawxml`). The host adds
//! the api-version, holds the credentials and refuses paths outside the service.

use serde_json::Value;

use crate::Error;
use crate::bindings::aigw::plugin::arm as host;

/// A resource read from ARM.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The `ETag` header, to send back as `If-Match` in a plan.
    pub etag: Option<String>,
    /// The parsed JSON body.
    pub body: Value,
}

fn parse(path: &str, body: &str) -> Result<Value, Error> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(body).map_err(|e| Error::Internal(format!("ARM answered {path} with invalid JSON: {e}")))
}

/// GETs one resource.
pub fn get(path: &str) -> Result<Resource, Error> {
    let response = host::get(path)?;
    Ok(Resource { etag: response.etag, body: parse(path, &response.body)? })
}

/// GETs one resource, or `None` when ARM answers 404.
pub fn get_optional(path: &str) -> Result<Option<Resource>, Error> {
    match get(path) {
        Ok(resource) => Ok(Some(resource)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(Error::Upstream(e)) if e.status == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// GETs every item of a collection (the host follows `nextLink`).
pub fn list(path: &str) -> Result<Vec<Value>, Error> {
    host::list(path)?.iter().map(|item| parse(path, item)).collect()
}

/// GETs several resources concurrently; each entry matches the path at the same index.
pub fn get_many(paths: &[String]) -> Vec<Result<Resource, Error>> {
    host::get_many(paths)
        .into_iter()
        .zip(paths)
        .map(|(outcome, path)| {
            let response = outcome?;
            Ok(Resource { etag: response.etag, body: parse(path, &response.body)? })
        })
        .collect()
}
