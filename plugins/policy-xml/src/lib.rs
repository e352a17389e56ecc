//! stub
pub mod analysis;
pub mod condition;
pub mod effective;
mod mask;
pub mod parse;
pub mod span;
pub mod text;

pub use analysis::{
    Analysis, BranchIndex, BranchKind, BranchStep, Choose, LimitElement, LimitKind, Section,
};
pub use condition::{Condition, CounterKey};
pub use effective::{
    EffectiveLimit, EffectiveLimits, LimitSource, Measure, QuotaPeriod, ScopeLabel, Sharing,
    SubscriptionFacts, SubscriptionScopeKind, effective_limits, named_value_usage,
    subscriptions_sharing,
};
pub use parse::{Attr, Element, Node, PolicyDocument, XmlError};
pub use span::Span;
pub mod edit;
pub mod update;
pub use edit::*;
pub use update::*;
