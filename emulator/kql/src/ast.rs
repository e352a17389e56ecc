//! The syntax tree of a parsed query.
//!
//! Invariants:
//! - Every node that can be the subject of an error keeps the byte span of its text.
//! - The tree only contains constructs of the supported subset: the parser rejects everything
//!   else, so the evaluator never meets an operator or function it does not know. Names
//!   (columns, tables, `let` variables) are not resolved here; that happens at execution.

use crate::error::Span;
use crate::value::{ColumnType, Value};

/// A whole query: `let` statements, then one tabular expression.
#[derive(Clone, Debug)]
pub struct Query {
    /// The text the spans refer to.
    pub source: String,
    pub lets: Vec<LetStmt>,
    pub body: TabularExpr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct LetStmt {
    pub name: Ident,
    pub value: LetValue,
}

#[derive(Clone, Debug)]
pub enum LetValue {
    Scalar(Expr),
    Tabular(TabularExpr),
}

/// `Source | op | op ...`
#[derive(Clone, Debug)]
pub struct TabularExpr {
    pub source: TabularSource,
    pub ops: Vec<Operator>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum TabularSource {
    /// A table or a tabular `let` name.
    Name(Ident),
    /// `( tabular )`
    Paren(Box<TabularExpr>),
}

/// One pipeline stage, with the span of its name (`where`, `summarize`, ...).
#[derive(Clone, Debug)]
pub struct Operator {
    pub kind: OpKind,
    /// The operator's name as written (`order`/`sort`, `take`/`limit` ...), for messages.
    pub name: &'static str,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum OpKind {
    Where(Expr),
    Extend(Vec<NamedExpr>),
    Project(Vec<NamedExpr>),
    ProjectAway(Vec<Ident>),
    /// `(new, old)` pairs.
    ProjectRename(Vec<(Ident, Ident)>),
    Summarize {
        aggs: Vec<NamedExpr>,
        by: Vec<NamedExpr>,
    },
    Sort(Vec<SortKey>),
    Top {
        count: Expr,
        key: SortKey,
    },
    Take(Expr),
    Count,
    Distinct(Vec<Ident>),
    Join {
        kind: JoinKind,
        right: Box<TabularExpr>,
        on: Vec<JoinKey>,
    },
    /// `render ...`: accepted and ignored, as the query API does without `Prefer: include-render`.
    Render,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum JoinKind {
    /// KQL's default: deduplicates the left side on the key, then inner-joins.
    InnerUnique,
    Inner,
    LeftOuter,
    LeftSemi,
    LeftAnti,
}

impl JoinKind {
    pub fn name(self) -> &'static str {
        match self {
            JoinKind::InnerUnique => "innerunique",
            JoinKind::Inner => "inner",
            JoinKind::LeftOuter => "leftouter",
            JoinKind::LeftSemi => "leftsemi",
            JoinKind::LeftAnti => "leftanti",
        }
    }
}

/// `on Col` (same name both sides) or `on $left.A == $right.B`.
#[derive(Clone, Debug)]
pub struct JoinKey {
    pub left: Ident,
    pub right: Ident,
}

/// `name = expr` or a bare `expr`.
#[derive(Clone, Debug)]
pub struct NamedExpr {
    pub name: Option<Ident>,
    pub expr: Expr,
}

#[derive(Clone, Debug)]
pub struct SortKey {
    pub expr: Expr,
    pub desc: bool,
    pub nulls_first: bool,
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    /// A literal with its type (needed for typed nulls such as `long(null)`).
    Literal(Value, ColumnType),
    /// A column or scalar `let` name.
    Name(String),
    Neg(Box<Expr>),
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `x in (a, b)`, `x !in~ (...)`, `x in (T | project c)`.
    In {
        expr: Box<Expr>,
        list: InList,
        negated: bool,
        case_insensitive: bool,
    },
    /// `x between (lo .. hi)`.
    Between {
        expr: Box<Expr>,
        lo: Box<Expr>,
        hi: Box<Expr>,
        negated: bool,
    },
    Call {
        func: Func,
        name_span: Span,
        args: Vec<Expr>,
    },
    /// `d.key`, `d['key']`, `d[0]` on a dynamic value.
    Index {
        expr: Box<Expr>,
        key: Box<Expr>,
    },
}

#[derive(Clone, Debug)]
pub enum InList {
    Values(Vec<Expr>),
    Tabular(Box<TabularExpr>),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `=~`
    EqCi,
    /// `!~`
    NeCi,
    And,
    Or,
    /// String operators: `has`, `contains`, `startswith`, `endswith`, each with `_cs` and `!`.
    Str {
        op: StrOp,
        case_sensitive: bool,
        negated: bool,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StrOp {
    Has,
    Contains,
    StartsWith,
    EndsWith,
    HasPrefix,
}

impl BinOp {
    /// The operator as written in KQL.
    pub fn text(self) -> String {
        match self {
            BinOp::Add => "+".into(),
            BinOp::Sub => "-".into(),
            BinOp::Mul => "*".into(),
            BinOp::Div => "/".into(),
            BinOp::Mod => "%".into(),
            BinOp::Eq => "==".into(),
            BinOp::Ne => "!=".into(),
            BinOp::Lt => "<".into(),
            BinOp::Le => "<=".into(),
            BinOp::Gt => ">".into(),
            BinOp::Ge => ">=".into(),
            BinOp::EqCi => "=~".into(),
            BinOp::NeCi => "!~".into(),
            BinOp::And => "and".into(),
            BinOp::Or => "or".into(),
            BinOp::Str { op, case_sensitive, negated } => {
                let base = match op {
                    StrOp::Has => "has",
                    StrOp::Contains => "contains",
                    StrOp::StartsWith => "startswith",
                    StrOp::EndsWith => "endswith",
                    StrOp::HasPrefix => "hasprefix",
                };
                format!("{}{}{}", if negated { "!" } else { "" }, base, if case_sensitive { "_cs" } else { "" })
            }
        }
    }
}

/// The functions of the subset. Aggregates are only valid inside `summarize`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    // Scalar functions.
    Ago,
    Now,
    Bin,
    Not,
    IsEmpty,
    IsNotEmpty,
    IsNull,
    IsNotNull,
    Iff,
    Coalesce,
    ToString,
    ToLong,
    ToInt,
    ToReal,
    ToBool,
    ToDateTime,
    ToTimespan,
    ToDynamic,
    Round,
    Floor,
    Ceiling,
    Abs,
    Sqrt,
    Pow,
    Log,
    Log10,
    Exp,
    StrCat,
    StrLen,
    ToLower,
    ToUpper,
    Substring,
    StartOfDay,
    StartOfWeek,
    StartOfMonth,
    StartOfYear,
    EndOfDay,
    HourOfDay,
    DayOfWeek,
    DatetimeAdd,
    DatetimeDiff,
    // Aggregates.
    Count,
    CountIf,
    Sum,
    SumIf,
    Avg,
    AvgIf,
    Max,
    Min,
    Percentile,
    DCount,
    DCountIf,
}

impl Func {
    /// Resolves a function name of the subset.
    pub fn from_name(name: &str) -> Option<Func> {
        use Func::*;
        Some(match name {
            "ago" => Ago,
            "now" => Now,
            "bin" => Bin,
            "floor" => Floor,
            "not" => Not,
            "isempty" => IsEmpty,
            "isnotempty" => IsNotEmpty,
            "isnull" => IsNull,
            "isnotnull" => IsNotNull,
            "iff" | "iif" => Iff,
            "coalesce" => Coalesce,
            "tostring" => ToString,
            "tolong" => ToLong,
            "toint" => ToInt,
            "todouble" | "toreal" => ToReal,
            "tobool" | "toboolean" => ToBool,
            "todatetime" => ToDateTime,
            "totimespan" | "totime" => ToTimespan,
            "todynamic" | "parse_json" | "parsejson" => ToDynamic,
            "round" => Round,
            "ceiling" => Ceiling,
            "abs" => Abs,
            "sqrt" => Sqrt,
            "pow" => Pow,
            "log" => Log,
            "log10" => Log10,
            "exp" => Exp,
            "strcat" => StrCat,
            "strlen" => StrLen,
            "tolower" => ToLower,
            "toupper" => ToUpper,
            "substring" => Substring,
            "startofday" => StartOfDay,
            "startofweek" => StartOfWeek,
            "startofmonth" => StartOfMonth,
            "startofyear" => StartOfYear,
            "endofday" => EndOfDay,
            "hourofday" => HourOfDay,
            "dayofweek" => DayOfWeek,
            "datetime_add" => DatetimeAdd,
            "datetime_diff" => DatetimeDiff,
            "count" => Count,
            "countif" => CountIf,
            "sum" => Sum,
            "sumif" => SumIf,
            "avg" => Avg,
            "avgif" => AvgIf,
            "max" => Max,
            "min" => Min,
            "percentile" => Percentile,
            "dcount" => DCount,
            "dcountif" => DCountIf,
            _ => return None,
        })
    }

    pub fn is_aggregate(self) -> bool {
        use Func::*;
        matches!(self, Count | CountIf | Sum | SumIf | Avg | AvgIf | Max | Min | Percentile | DCount | DCountIf)
    }

    /// The canonical name, used in messages and default column names.
    pub fn name(self) -> &'static str {
        use Func::*;
        match self {
            Ago => "ago",
            Now => "now",
            Bin => "bin",
            Floor => "floor",
            Not => "not",
            IsEmpty => "isempty",
            IsNotEmpty => "isnotempty",
            IsNull => "isnull",
            IsNotNull => "isnotnull",
            Iff => "iff",
            Coalesce => "coalesce",
            ToString => "tostring",
            ToLong => "tolong",
            ToInt => "toint",
            ToReal => "todouble",
            ToBool => "tobool",
            ToDateTime => "todatetime",
            ToTimespan => "totimespan",
            ToDynamic => "todynamic",
            Round => "round",
            Ceiling => "ceiling",
            Abs => "abs",
            Sqrt => "sqrt",
            Pow => "pow",
            Log => "log",
            Log10 => "log10",
            Exp => "exp",
            StrCat => "strcat",
            StrLen => "strlen",
            ToLower => "tolower",
            ToUpper => "toupper",
            Substring => "substring",
            StartOfDay => "startofday",
            StartOfWeek => "startofweek",
            StartOfMonth => "startofmonth",
            StartOfYear => "startofyear",
            EndOfDay => "endofday",
            HourOfDay => "hourofday",
            DayOfWeek => "dayofweek",
            DatetimeAdd => "datetime_add",
            DatetimeDiff => "datetime_diff",
            Count => "count",
            CountIf => "countif",
            Sum => "sum",
            SumIf => "sumif",
            Avg => "avg",
            AvgIf => "avgif",
            Max => "max",
            Min => "min",
            Percentile => "percentile",
            DCount => "dcount",
            DCountIf => "dcountif",
        }
    }

    /// Accepted argument counts `(min, max)`.
    pub fn arity(self) -> (usize, usize) {
        use Func::*;
        match self {
            Now => (0, 1),
            Count => (0, 0),
            Ago | Not | IsEmpty | IsNotEmpty | IsNull | IsNotNull | ToString | ToLong | ToInt | ToReal | ToBool
            | ToDateTime | ToTimespan | ToDynamic | Ceiling | Abs | Sqrt | Log | Log10 | Exp | StrLen | ToLower
            | ToUpper | StartOfDay | StartOfWeek | StartOfMonth | StartOfYear | EndOfDay | HourOfDay | DayOfWeek
            | CountIf | Sum | Avg | Max | Min => (1, 1),
            Round => (1, 2),
            Bin | Floor | Pow | SumIf | AvgIf | Percentile => (2, 2),
            DCount => (1, 2),
            DCountIf => (2, 3),
            Iff | DatetimeAdd | DatetimeDiff => (3, 3),
            Substring => (2, 3),
            Coalesce | StrCat => (1, 64),
        }
    }
}
