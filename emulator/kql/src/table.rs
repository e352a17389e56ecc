//! The table model: typed columnar storage, schemas, tables and the catalog of named tables.
//!
//! Invariants:
//! - A `Table` has one `Column` per schema column, in schema order, all of the same length, and
//!   each column's storage matches its type: `int`/`long`/`datetime`/`timespan` in `i64`
//!   (ticks for the time types) with `i64::MIN` as null, `real` as `Option<f64>`, `bool` as
//!   `Option<bool>`, `string`/`guid` dictionary-encoded (`u32` codes into a shared `Dict` whose
//!   code 0 is always the empty string), `dynamic` as shared JSON.
//! - Columns are shared (`Arc`) between a table and the query results derived from it; appending
//!   to a table copies a column only if a result still holds it.
//! - Strings are never null: a null pushed into a string column is stored as the empty string.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::value::{ColumnType, DateTime, Timespan, Value};

/// The null of `i64`-stored columns.
pub(crate) const NULL_I64: i64 = i64::MIN;
/// In a row-index vector, a row that does not exist (the missing side of an outer join):
/// gathering it yields null.
pub(crate) const NULL_ROW: u32 = u32::MAX;

/// An error building a table from values of the wrong type or shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataError(pub String);

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DataError {}

/// The distinct strings of a string column. Code 0 is always `""`.
#[derive(Clone, Debug)]
pub struct Dict {
    values: Vec<Arc<str>>,
    index: FxHashMap<Arc<str>, u32>,
}

impl Default for Dict {
    fn default() -> Self {
        let empty: Arc<str> = Arc::from("");
        let mut index = FxHashMap::default();
        index.insert(empty.clone(), 0);
        Dict { values: vec![empty], index }
    }
}

impl Dict {
    pub fn new() -> Dict {
        Dict::default()
    }

    /// An empty dictionary (just `""`) with room for `n` more strings without rehashing.
    pub fn with_capacity(n: usize) -> Dict {
        let mut d = Dict::default();
        d.values.reserve(n);
        d.index.reserve(n);
        d
    }

    /// The code of `s`, adding it if new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&c) = self.index.get(s) {
            return c;
        }
        self.insert_new(Arc::from(s))
    }

    /// Like [`Dict::intern`], reusing the caller's allocation.
    pub fn intern_arc(&mut self, s: &Arc<str>) -> u32 {
        if let Some(&c) = self.index.get(&**s) {
            return c;
        }
        self.insert_new(s.clone())
    }

    fn insert_new(&mut self, s: Arc<str>) -> u32 {
        let c = u32::try_from(self.values.len()).expect("more than 4 billion distinct strings");
        self.index.insert(s.clone(), c);
        self.values.push(s);
        c
    }

    /// The code of `s` if present.
    pub fn lookup(&self, s: &str) -> Option<u32> {
        self.index.get(s).copied()
    }

    pub fn get(&self, code: u32) -> &Arc<str> {
        &self.values[code as usize]
    }

    pub fn values(&self) -> &[Arc<str>] {
        &self.values
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Never true: the empty string is always present.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Column storage, by storage class.
#[derive(Clone, Debug)]
pub(crate) enum ColumnData {
    Bool(Vec<Option<bool>>),
    /// `int`, `long`, `datetime` (ticks), `timespan` (ticks); `NULL_I64` is null.
    I64(Vec<i64>),
    F64(Vec<Option<f64>>),
    Str {
        dict: Arc<Dict>,
        codes: Vec<u32>,
    },
    Dyn(Vec<Option<Arc<serde_json::Value>>>),
}

/// A typed column of values.
#[derive(Clone, Debug)]
pub struct Column {
    ty: ColumnType,
    pub(crate) data: ColumnData,
}

impl Column {
    /// An empty column of type `ty`.
    pub fn new(ty: ColumnType) -> Column {
        Column::with_capacity(ty, 0)
    }

    pub fn with_capacity(ty: ColumnType, n: usize) -> Column {
        let data = match ty {
            ColumnType::Bool => ColumnData::Bool(Vec::with_capacity(n)),
            ColumnType::Int | ColumnType::Long | ColumnType::DateTime | ColumnType::Timespan => {
                ColumnData::I64(Vec::with_capacity(n))
            }
            ColumnType::Real => ColumnData::F64(Vec::with_capacity(n)),
            ColumnType::String | ColumnType::Guid => {
                ColumnData::Str { dict: Arc::new(Dict::new()), codes: Vec::with_capacity(n) }
            }
            ColumnType::Dynamic => ColumnData::Dyn(Vec::with_capacity(n)),
        };
        Column { ty, data }
    }

    /// A column from values, type-checked like [`Column::push`].
    pub fn from_values(ty: ColumnType, values: impl IntoIterator<Item = Value>) -> Result<Column, DataError> {
        let it = values.into_iter();
        let mut c = Column::with_capacity(ty, it.size_hint().0);
        for v in it {
            c.push(&v)?;
        }
        Ok(c)
    }

    /// An `int`, `long`, `datetime` (ticks) or `timespan` (ticks) column from raw values, with
    /// [`Column::NULL_I64`] as null. For loading many rows without building a [`Value`] per
    /// cell. `int` values must fit in `i32`.
    pub fn from_i64s(ty: ColumnType, values: Vec<i64>) -> Result<Column, DataError> {
        match ty {
            ColumnType::Int => {
                if let Some(x) = values.iter().find(|&&x| x != NULL_I64 && i32::try_from(x).is_err()) {
                    return Err(DataError(format!("{x} does not fit in an int column")));
                }
            }
            ColumnType::Long | ColumnType::Timespan => {}
            ColumnType::DateTime => {
                if let Some(x) = values.iter().find(|&&x| x != NULL_I64 && DateTime::from_ticks(x).is_none()) {
                    return Err(DataError(format!("{x} ticks is not a valid datetime")));
                }
            }
            other => return Err(DataError(format!("a {other} column cannot be built from 64-bit integers"))),
        }
        Ok(Column { ty, data: ColumnData::I64(values) })
    }

    /// A `string` or `guid` column from dictionary codes (each must be a code of `dict`).
    /// Columns built from the same `Arc<Dict>` share it.
    pub fn from_codes(ty: ColumnType, dict: Arc<Dict>, codes: Vec<u32>) -> Result<Column, DataError> {
        if !ty.is_stringy() {
            return Err(DataError(format!("a {ty} column cannot be built from string codes")));
        }
        if let Some(c) = codes.iter().find(|&&c| c as usize >= dict.len()) {
            return Err(DataError(format!("string code {c} is not in the dictionary ({} entries)", dict.len())));
        }
        Ok(Column { ty, data: ColumnData::Str { dict, codes } })
    }

    /// A `real` column (`None` is null).
    pub fn from_reals(values: Vec<Option<f64>>) -> Column {
        Column { ty: ColumnType::Real, data: ColumnData::F64(values) }
    }

    /// A `bool` column (`None` is null).
    pub fn from_bools(values: Vec<Option<bool>>) -> Column {
        Column { ty: ColumnType::Bool, data: ColumnData::Bool(values) }
    }

    /// A `dynamic` column (`None` is null).
    pub fn from_dynamics(values: Vec<Option<Arc<serde_json::Value>>>) -> Column {
        Column { ty: ColumnType::Dynamic, data: ColumnData::Dyn(values) }
    }

    /// A column of `len` nulls (empty strings for `string`/`guid`).
    pub fn nulls(ty: ColumnType, len: usize) -> Column {
        let data = match ty {
            ColumnType::Bool => ColumnData::Bool(vec![None; len]),
            ColumnType::Int | ColumnType::Long | ColumnType::DateTime | ColumnType::Timespan => {
                ColumnData::I64(vec![NULL_I64; len])
            }
            ColumnType::Real => ColumnData::F64(vec![None; len]),
            ColumnType::String | ColumnType::Guid => {
                ColumnData::Str { dict: Arc::new(Dict::new()), codes: vec![0; len] }
            }
            ColumnType::Dynamic => ColumnData::Dyn(vec![None; len]),
        };
        Column { ty, data }
    }

    /// The null of `int`/`long`/`datetime`/`timespan` columns in [`Column::from_i64s`].
    pub const NULL_I64: i64 = NULL_I64;

    pub(crate) fn from_data(ty: ColumnType, data: ColumnData) -> Column {
        Column { ty, data }
    }

    pub fn ty(&self) -> ColumnType {
        self.ty
    }

    pub fn len(&self) -> usize {
        match &self.data {
            ColumnData::Bool(v) => v.len(),
            ColumnData::I64(v) => v.len(),
            ColumnData::F64(v) => v.len(),
            ColumnData::Str { codes, .. } => codes.len(),
            ColumnData::Dyn(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a value. Accepts the value kinds of the column's type, `Value::Null` (the empty
    /// string for string columns), a `long` into a `real` column, and any value into a
    /// `dynamic` column. `int` columns reject values outside `i32`.
    pub fn push(&mut self, v: &Value) -> Result<(), DataError> {
        check_value(self.ty, v)?;
        match (&mut self.data, v) {
            (ColumnData::Bool(c), Value::Bool(b)) => c.push(Some(*b)),
            (ColumnData::Bool(c), _) => c.push(None),
            (ColumnData::I64(c), Value::Long(x)) => c.push(*x),
            (ColumnData::I64(c), Value::DateTime(d)) => c.push(d.ticks()),
            (ColumnData::I64(c), Value::Timespan(t)) => c.push(t.0),
            (ColumnData::I64(c), _) => c.push(NULL_I64),
            (ColumnData::F64(c), Value::Real(x)) => c.push(Some(*x)),
            (ColumnData::F64(c), Value::Long(x)) => c.push(Some(*x as f64)),
            (ColumnData::F64(c), _) => c.push(None),
            (ColumnData::Str { dict, codes }, Value::String(s)) => {
                let code = Arc::make_mut(dict).intern_arc(s);
                codes.push(code)
            }
            (ColumnData::Str { codes, .. }, _) => codes.push(0),
            (ColumnData::Dyn(c), Value::Null) => c.push(None),
            (ColumnData::Dyn(c), Value::Dynamic(j)) => c.push(Some(j.clone())),
            (ColumnData::Dyn(c), other) => c.push(Some(Arc::new(value_to_json(other)))),
        }
        Ok(())
    }

    /// Appends `v`, or null if it does not fit the column's type (evaluator results are typed
    /// ahead of time, so a mismatch there is a null such as a failed conversion).
    pub(crate) fn push_or_null(&mut self, v: &Value) {
        if self.push(v).is_err() {
            self.push(&Value::Null).expect("null fits every column");
        }
    }

    /// True if the value at `row` is null (never for strings).
    pub(crate) fn is_null(&self, row: usize) -> bool {
        match &self.data {
            ColumnData::Bool(v) => v[row].is_none(),
            ColumnData::I64(v) => v[row] == NULL_I64,
            ColumnData::F64(v) => v[row].is_none(),
            ColumnData::Str { .. } => false,
            ColumnData::Dyn(v) => v[row].is_none(),
        }
    }

    /// The value at `row`.
    pub fn get(&self, row: usize) -> Value {
        match &self.data {
            ColumnData::Bool(v) => v[row].map_or(Value::Null, Value::Bool),
            ColumnData::I64(v) => {
                let x = v[row];
                if x == NULL_I64 {
                    return Value::Null;
                }
                match self.ty {
                    ColumnType::DateTime => DateTime::from_ticks(x).map_or(Value::Null, Value::DateTime),
                    ColumnType::Timespan => Value::Timespan(Timespan(x)),
                    _ => Value::Long(x),
                }
            }
            ColumnData::F64(v) => v[row].map_or(Value::Null, Value::Real),
            ColumnData::Str { dict, codes } => Value::String(dict.get(codes[row]).clone()),
            ColumnData::Dyn(v) => v[row].clone().map_or(Value::Null, Value::Dynamic),
        }
    }

    /// The rows at `idx`, in that order; `NULL_ROW` entries become null.
    pub(crate) fn gather(&self, idx: &[u32]) -> Column {
        fn g<T: Clone>(v: &[T], idx: &[u32], null: T) -> Vec<T> {
            idx.iter().map(|&i| if i == NULL_ROW { null.clone() } else { v[i as usize].clone() }).collect()
        }
        let data = match &self.data {
            ColumnData::Bool(v) => ColumnData::Bool(g(v, idx, None)),
            ColumnData::I64(v) => ColumnData::I64(g(v, idx, NULL_I64)),
            ColumnData::F64(v) => ColumnData::F64(g(v, idx, None)),
            ColumnData::Str { dict, codes } => ColumnData::Str { dict: dict.clone(), codes: g(codes, idx, 0) },
            ColumnData::Dyn(v) => ColumnData::Dyn(g(v, idx, None)),
        };
        Column { ty: self.ty, data }
    }

    /// Appends all rows of `other` (same storage class).
    fn append(&mut self, other: &Column) -> Result<(), DataError> {
        match (&mut self.data, &other.data) {
            (ColumnData::Bool(a), ColumnData::Bool(b)) => a.extend_from_slice(b),
            (ColumnData::I64(a), ColumnData::I64(b)) => a.extend_from_slice(b),
            (ColumnData::F64(a), ColumnData::F64(b)) => a.extend_from_slice(b),
            (ColumnData::Dyn(a), ColumnData::Dyn(b)) => a.extend_from_slice(b),
            (ColumnData::Str { dict, codes }, ColumnData::Str { dict: od, codes: oc }) => {
                if Arc::ptr_eq(dict, od) {
                    codes.extend_from_slice(oc);
                } else {
                    let d = Arc::make_mut(dict);
                    let map: Vec<u32> = od.values().iter().map(|s| d.intern_arc(s)).collect();
                    codes.extend(oc.iter().map(|&c| map[c as usize]));
                }
            }
            _ => {
                return Err(DataError(format!("cannot append a {} column to a {} column", other.ty, self.ty)));
            }
        }
        Ok(())
    }
}

/// Whether `v` can be stored in a column of type `ty` (see [`Column::push`]).
pub(crate) fn check_value(ty: ColumnType, v: &Value) -> Result<(), DataError> {
    let ok = match (ty, v) {
        (_, Value::Null) | (ColumnType::Dynamic, _) => true,
        (ColumnType::Bool, Value::Bool(_)) => true,
        (ColumnType::Int, Value::Long(x)) => {
            if i32::try_from(*x).is_err() {
                return Err(DataError(format!("{x} does not fit in an int column")));
            }
            true
        }
        (ColumnType::Long, Value::Long(_)) => true,
        (ColumnType::Real, Value::Real(_) | Value::Long(_)) => true,
        (ColumnType::String | ColumnType::Guid, Value::String(_)) => true,
        (ColumnType::DateTime, Value::DateTime(_)) => true,
        (ColumnType::Timespan, Value::Timespan(_)) => true,
        _ => false,
    };
    if ok { Ok(()) } else { Err(DataError(format!("a value {v:?} cannot be stored in a column of type {ty}"))) }
}

/// The JSON form of a scalar, for storing it in a `dynamic` column.
pub(crate) fn value_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Long(x) => (*x).into(),
        Value::Real(x) => serde_json::Number::from_f64(*x).map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::String(s) => serde_json::Value::String(s.to_string()),
        Value::DateTime(d) => serde_json::Value::String(d.to_string()),
        Value::Timespan(t) => serde_json::Value::String(t.to_string()),
        Value::Dynamic(j) => (**j).clone(),
    }
}

/// A column's name and type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub ty: ColumnType,
}

impl ColumnDef {
    pub fn new(name: impl Into<String>, ty: ColumnType) -> ColumnDef {
        ColumnDef { name: name.into(), ty }
    }
}

/// The ordered, typed columns of a table.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Schema {
    columns: Vec<ColumnDef>,
}

impl Schema {
    /// A schema; column names must be unique.
    pub fn new(columns: Vec<ColumnDef>) -> Result<Schema, DataError> {
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].iter().any(|d| d.name == c.name) {
                return Err(DataError(format!("duplicate column name '{}'", c.name)));
            }
        }
        Ok(Schema { columns })
    }

    /// From `(name, type)` pairs; panics on duplicate names (for static schemas).
    pub fn from_pairs(pairs: &[(&str, ColumnType)]) -> Schema {
        Schema::new(pairs.iter().map(|(n, t)| ColumnDef::new(*n, *t)).collect())
            .expect("static schema has unique names")
    }

    pub fn columns(&self) -> &[ColumnDef] {
        &self.columns
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The position of the column called `name` (case-sensitive, as in KQL).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// A named table of rows.
#[derive(Clone, Debug)]
pub struct Table {
    name: String,
    schema: Schema,
    columns: Vec<Arc<Column>>,
    len: usize,
}

impl Table {
    /// An empty table.
    pub fn new(name: impl Into<String>, schema: Schema) -> Table {
        let columns = schema.columns().iter().map(|c| Arc::new(Column::new(c.ty))).collect();
        Table { name: name.into(), schema, columns, len: 0 }
    }

    /// A table from named columns of equal length.
    pub fn from_columns(name: impl Into<String>, columns: Vec<(String, Column)>) -> Result<Table, DataError> {
        let len = columns.first().map_or(0, |(_, c)| c.len());
        if let Some((n, c)) = columns.iter().find(|(_, c)| c.len() != len) {
            return Err(DataError(format!("column '{n}' has {} rows, expected {len}", c.len())));
        }
        let schema = Schema::new(columns.iter().map(|(n, c)| ColumnDef::new(n.clone(), c.ty())).collect())?;
        Ok(Table { name: name.into(), schema, columns: columns.into_iter().map(|(_, c)| Arc::new(c)).collect(), len })
    }

    /// A table with `schema` from one column per schema column, in schema order, of matching
    /// types and equal lengths (the bulk-loading counterpart of [`Table::builder`]).
    pub fn from_schema_columns(
        name: impl Into<String>,
        schema: Schema,
        columns: Vec<Column>,
    ) -> Result<Table, DataError> {
        let name = name.into();
        if columns.len() != schema.len() {
            return Err(DataError(format!(
                "table '{name}' has {} columns, {} were given",
                schema.len(),
                columns.len()
            )));
        }
        let len = columns.first().map_or(0, Column::len);
        for (def, c) in schema.columns().iter().zip(&columns) {
            if c.ty() != def.ty {
                return Err(DataError(format!("column '{}' is {}, a {} column was given", def.name, def.ty, c.ty())));
            }
            if c.len() != len {
                return Err(DataError(format!("column '{}' has {} rows, expected {len}", def.name, c.len())));
            }
        }
        Ok(Table { name, schema, columns: columns.into_iter().map(Arc::new).collect(), len })
    }

    pub(crate) fn from_parts(name: String, schema: Schema, columns: Vec<Arc<Column>>, len: usize) -> Table {
        debug_assert!(columns.iter().all(|c| c.len() == len));
        Table { name, schema, columns, len }
    }

    /// A builder that accumulates rows without the per-row sharing checks of [`Table::push_row`].
    pub fn builder(name: impl Into<String>, schema: Schema) -> TableBuilder {
        TableBuilder {
            columns: schema.columns().iter().map(|c| BuildCol::new(c.ty)).collect(),
            filled: vec![usize::MAX; schema.len()],
            scratch: Vec::new(),
            table_name: name.into(),
            schema,
            len: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn column(&self, i: usize) -> &Column {
        &self.columns[i]
    }

    pub(crate) fn column_arc(&self, i: usize) -> &Arc<Column> {
        &self.columns[i]
    }

    pub fn column_by_name(&self, name: &str) -> Option<&Column> {
        self.schema.index_of(name).map(|i| &*self.columns[i])
    }

    /// The value at `row` of column `col`.
    pub fn value(&self, row: usize, col: usize) -> Value {
        self.columns[col].get(row)
    }

    /// Row `row` as values, in schema order.
    pub fn row(&self, row: usize) -> Vec<Value> {
        self.columns.iter().map(|c| c.get(row)).collect()
    }

    /// The first `n` rows (all of them if there are fewer), sharing nothing mutable with `self`.
    pub fn head(&self, n: usize) -> Table {
        if n >= self.len {
            return self.clone();
        }
        let idx: Vec<u32> = (0..n as u32).collect();
        let columns = self.columns.iter().map(|c| Arc::new(c.gather(&idx))).collect();
        Table { name: self.name.clone(), schema: self.schema.clone(), columns, len: n }
    }

    /// Appends one row given in schema order. For many rows prefer a [`TableBuilder`] and
    /// [`Table::append`].
    pub fn push_row(&mut self, row: impl IntoIterator<Item = Value>) -> Result<(), DataError> {
        let row: Vec<Value> = row.into_iter().collect();
        self.check_row_len(row.len())?;
        self.check_row_types(&row)?;
        for (c, v) in self.columns.iter_mut().zip(&row) {
            Arc::make_mut(c).push(v).expect("checked");
        }
        self.len += 1;
        Ok(())
    }

    /// Appends every row of `other`, whose schema must equal this table's.
    pub fn append(&mut self, other: &Table) -> Result<(), DataError> {
        if other.schema != self.schema {
            return Err(DataError(format!(
                "cannot append rows of '{}' to '{}': schemas differ",
                other.name, self.name
            )));
        }
        for (c, o) in self.columns.iter_mut().zip(&other.columns) {
            Arc::make_mut(c).append(o)?;
        }
        self.len += other.len;
        Ok(())
    }

    fn check_row_len(&self, n: usize) -> Result<(), DataError> {
        if n != self.schema.len() {
            return Err(DataError(format!(
                "row has {n} values, table '{}' has {} columns",
                self.name,
                self.schema.len()
            )));
        }
        Ok(())
    }

    fn check_row_types(&self, row: &[Value]) -> Result<(), DataError> {
        for (c, v) in self.columns.iter().zip(row) {
            check_value(c.ty(), v).map_err(|e| DataError(format!("{e} (table '{}')", self.name)))?;
        }
        Ok(())
    }
}

/// A column under construction: string columns own their dictionary outright (no sharing
/// checks per value).
#[derive(Clone, Debug)]
enum BuildCol {
    Other(Column),
    Str { ty: ColumnType, dict: Dict, codes: Vec<u32> },
}

impl BuildCol {
    fn new(ty: ColumnType) -> BuildCol {
        if ty.is_stringy() {
            BuildCol::Str { ty, dict: Dict::new(), codes: Vec::new() }
        } else {
            BuildCol::Other(Column::new(ty))
        }
    }

    fn ty(&self) -> ColumnType {
        match self {
            BuildCol::Other(c) => c.ty(),
            BuildCol::Str { ty, .. } => *ty,
        }
    }

    /// Appends a value already checked with `check_value`.
    fn push(&mut self, v: &Value) {
        match (self, v) {
            (BuildCol::Str { dict, codes, .. }, Value::String(s)) => codes.push(dict.intern_arc(s)),
            (BuildCol::Str { codes, .. }, _) => codes.push(0),
            (BuildCol::Other(c), v) => c.push(v).expect("checked"),
        }
    }

    fn push_null(&mut self) {
        match self {
            BuildCol::Str { codes, .. } => codes.push(0),
            BuildCol::Other(c) => c.push(&Value::Null).expect("null fits every column"),
        }
    }

    fn reserve(&mut self, n: usize) {
        match self {
            BuildCol::Str { codes, .. } => codes.reserve(n),
            BuildCol::Other(c) => match &mut c.data {
                ColumnData::Bool(v) => v.reserve(n),
                ColumnData::I64(v) => v.reserve(n),
                ColumnData::F64(v) => v.reserve(n),
                ColumnData::Str { codes, .. } => codes.reserve(n),
                ColumnData::Dyn(v) => v.reserve(n),
            },
        }
    }

    fn finish(self) -> Column {
        match self {
            BuildCol::Other(c) => c,
            BuildCol::Str { ty, dict, codes } => Column::from_data(ty, ColumnData::Str { dict: Arc::new(dict), codes }),
        }
    }
}

/// Accumulates rows for a table. Rows may be given in schema order, by column name, or by
/// column index; columns not given are null (empty for strings).
#[derive(Clone, Debug)]
pub struct TableBuilder {
    table_name: String,
    schema: Schema,
    columns: Vec<BuildCol>,
    len: usize,
    /// Per column, the row number it was last given a value for (to fill the rest with nulls
    /// and to catch a column given twice).
    filled: Vec<usize>,
    scratch: Vec<(usize, Value)>,
}

impl TableBuilder {
    /// Appends one row in schema order. On error nothing is appended.
    pub fn push_row(&mut self, row: impl IntoIterator<Item = Value>) -> Result<(), DataError> {
        let row: Vec<Value> = row.into_iter().collect();
        if row.len() != self.schema.len() {
            return Err(DataError(format!(
                "row has {} values, table '{}' has {} columns",
                row.len(),
                self.table_name,
                self.schema.len()
            )));
        }
        self.push_indexed(row.into_iter().enumerate())
    }

    /// Appends one row from `(column name, value)` pairs; other columns get null. Unknown
    /// names are an error. On error nothing is appended. For hot loops resolve the names once
    /// with [`Schema::index_of`] and use [`TableBuilder::push_indexed`].
    pub fn push_named<'a>(&mut self, fields: impl IntoIterator<Item = (&'a str, Value)>) -> Result<(), DataError> {
        let mut indexed = Vec::new();
        for (name, v) in fields {
            let i = self
                .schema
                .index_of(name)
                .ok_or_else(|| DataError(format!("table '{}' has no column '{name}'", self.table_name)))?;
            indexed.push((i, v));
        }
        self.push_indexed(indexed)
    }

    /// Appends one row from `(column index, value)` pairs; other columns get null. On error
    /// nothing is appended.
    pub fn push_indexed(&mut self, fields: impl IntoIterator<Item = (usize, Value)>) -> Result<(), DataError> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend(fields);
        let r = self.push_checked(&buf);
        buf.clear();
        self.scratch = buf;
        r
    }

    fn push_checked(&mut self, fields: &[(usize, Value)]) -> Result<(), DataError> {
        // Check everything first so a bad row leaves the builder unchanged.
        let row = self.len;
        let mut bad = None;
        for (i, v) in fields {
            let Some(c) = self.columns.get(*i) else {
                bad = Some(DataError(format!("column index {i} out of range for '{}'", self.table_name)));
                break;
            };
            if self.filled[*i] == row {
                bad = Some(DataError(format!("column '{}' given twice in one row", self.schema.columns()[*i].name)));
                break;
            }
            self.filled[*i] = row;
            if let Err(e) = check_value(c.ty(), v) {
                bad = Some(DataError(format!("{e} (table '{}')", self.table_name)));
                break;
            }
        }
        if let Some(e) = bad {
            for f in self.filled.iter_mut().filter(|f| **f == row) {
                *f = usize::MAX;
            }
            return Err(e);
        }
        for (i, v) in fields {
            self.columns[*i].push(v);
        }
        for (c, f) in self.columns.iter_mut().zip(&self.filled) {
            if *f != row {
                c.push_null();
            }
        }
        self.len += 1;
        Ok(())
    }

    /// Reserves room for `rows` more rows.
    pub fn reserve(&mut self, rows: usize) {
        for c in &mut self.columns {
            c.reserve(rows);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn build(self) -> Table {
        Table {
            name: self.table_name,
            schema: self.schema,
            columns: self.columns.into_iter().map(|c| Arc::new(c.finish())).collect(),
            len: self.len,
        }
    }
}

/// Where a query finds its tables, by exact (case-sensitive) name.
pub trait Catalog {
    fn table(&self, name: &str) -> Option<&Table>;
}

impl Catalog for [Table] {
    fn table(&self, name: &str) -> Option<&Table> {
        self.iter().find(|t| t.name() == name)
    }
}

impl Catalog for Vec<Table> {
    fn table(&self, name: &str) -> Option<&Table> {
        self.as_slice().table(name)
    }
}

impl<const N: usize> Catalog for [Table; N] {
    fn table(&self, name: &str) -> Option<&Table> {
        self.as_slice().table(name)
    }
}

impl Catalog for [&Table] {
    fn table(&self, name: &str) -> Option<&Table> {
        self.iter().copied().find(|t| t.name() == name)
    }
}

impl<S: std::hash::BuildHasher> Catalog for HashMap<String, Table, S> {
    fn table(&self, name: &str) -> Option<&Table> {
        self.get(name)
    }
}

impl Catalog for BTreeMap<String, Table> {
    fn table(&self, name: &str) -> Option<&Table> {
        self.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::from_pairs(&[
            ("t", ColumnType::DateTime),
            ("s", ColumnType::String),
            ("n", ColumnType::Int),
            ("r", ColumnType::Real),
        ])
    }

    #[test]
    fn builder_fills_unnamed_columns_with_nulls() {
        let mut b = Table::builder("T", schema());
        b.push_named([("s", Value::from("a")), ("n", Value::from(3))]).unwrap();
        b.push_row([Value::DateTime(DateTime::UNIX_EPOCH), "b".into(), Value::Null, 2.5.into()]).unwrap();
        let t = b.build();
        assert_eq!(t.len(), 2);
        assert_eq!(t.row(0), vec![Value::Null, "a".into(), Value::Long(3), Value::Null]);
        assert_eq!(t.value(1, 0), Value::DateTime(DateTime::UNIX_EPOCH));
        assert_eq!(t.value(1, 2), Value::Null);
    }

    #[test]
    fn type_errors_leave_the_table_unchanged() {
        let mut b = Table::builder("T", schema());
        assert!(b.push_named([("n", Value::from("x"))]).is_err());
        assert!(b.push_named([("n", Value::Long(1 << 40))]).is_err());
        assert!(b.push_named([("nope", Value::Null)]).is_err());
        assert!(b.is_empty());
        let mut t = b.build();
        assert!(t.push_row([Value::Null]).is_err());
        assert!(t.is_empty());
    }

    #[test]
    fn append_merges_dictionaries() {
        let mut a = Table::builder("T", schema());
        a.push_named([("s", Value::from("x"))]).unwrap();
        let mut a = a.build();
        let mut b = Table::builder("T", schema());
        b.push_named([("s", Value::from("y"))]).unwrap();
        b.push_named([("s", Value::from("x"))]).unwrap();
        a.append(&b.build()).unwrap();
        let s: Vec<Value> = (0..3).map(|i| a.value(i, 1)).collect();
        assert_eq!(s, vec!["x".into(), "y".into(), "x".into()]);
        a.push_row([Value::Null, Value::Null, Value::Null, Value::Null]).unwrap();
        assert_eq!(a.value(3, 1), Value::from(""));
    }

    #[test]
    fn bulk_columns_build_a_table_like_the_builder() {
        let mut dict = Dict::new();
        let (a, b) = (dict.intern("a"), dict.intern("b"));
        let dict = Arc::new(dict);
        let t = Table::from_schema_columns(
            "T",
            schema(),
            vec![
                Column::from_i64s(ColumnType::DateTime, vec![DateTime::UNIX_EPOCH.ticks(), Column::NULL_I64]).unwrap(),
                Column::from_codes(ColumnType::String, dict.clone(), vec![b, a]).unwrap(),
                Column::from_i64s(ColumnType::Int, vec![7, Column::NULL_I64]).unwrap(),
                Column::nulls(ColumnType::Real, 2),
            ],
        )
        .unwrap();
        assert_eq!(t.row(0), vec![Value::DateTime(DateTime::UNIX_EPOCH), "b".into(), Value::Long(7), Value::Null]);
        assert_eq!(t.row(1), vec![Value::Null, "a".into(), Value::Null, Value::Null]);
        // Appending a bulk-built table to a builder-built one merges dictionaries.
        let mut b2 = Table::builder("T", schema());
        b2.push_named([("s", Value::from("b"))]).unwrap();
        let mut t2 = b2.build();
        t2.append(&t).unwrap();
        assert_eq!(t2.value(1, 1), Value::from("b"));
        assert_eq!(t2.value(2, 1), Value::from("a"));
        // Mistakes are errors, not corrupt tables.
        assert!(Column::from_i64s(ColumnType::Int, vec![1 << 40]).is_err());
        assert!(Column::from_i64s(ColumnType::String, vec![1]).is_err());
        assert!(Column::from_codes(ColumnType::String, dict, vec![9]).is_err());
        assert!(Table::from_schema_columns("T", schema(), vec![Column::nulls(ColumnType::Real, 1)]).is_err());
        let wrong_type = vec![
            Column::nulls(ColumnType::DateTime, 1),
            Column::nulls(ColumnType::Long, 1),
            Column::nulls(ColumnType::Int, 1),
            Column::nulls(ColumnType::Real, 1),
        ];
        assert!(Table::from_schema_columns("T", schema(), wrong_type).is_err());
        let h = t2.head(2);
        assert_eq!((h.len(), h.value(1, 1)), (2, Value::from("b")));
        assert_eq!(t2.head(10).len(), 3);
    }

    #[test]
    fn gather_maps_missing_rows_to_null() {
        let c = Column::from_values(ColumnType::Long, [Value::Long(1), Value::Long(2)]).unwrap();
        let g = c.gather(&[1, NULL_ROW, 0]);
        assert_eq!((0..3).map(|i| g.get(i)).collect::<Vec<_>>(), vec![Value::Long(2), Value::Null, Value::Long(1)]);
    }
}
