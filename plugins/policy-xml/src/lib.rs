//! stub
pub mod mask;
pub mod parse;
pub mod span;
pub mod text;
pub mod condition;
