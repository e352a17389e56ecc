//! KQL subset: parser and evaluator (filled in by the telemetry work).
