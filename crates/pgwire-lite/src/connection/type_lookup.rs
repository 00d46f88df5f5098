//! Looking up types that are not built in (enums, domains, composites, extension types) in
//! `pg_type`, and the connection's [`TypeCache`].
//!
//! A lookup is its own request (Parse/Describe/Bind/Execute/Sync of the unnamed statement),
//! sent only when no other request is pending: after the ReadyForQuery of the Describe that
//! reported the unknown OID. Built-in OIDs never cause one; cached OIDs neither, so a type is
//! looked up once per cache (per pool, when a pool shares one).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::Connection;
use super::reader::Owes;
use crate::error::{Error, Result};
use crate::protocol::frontend::{self, STATEMENT};
use crate::row::{Column, QueryResult};
use crate::statement::Statement;
use crate::types::{Field, Kind, Type, TypeCache};

/// One query finds every type asked for, with what it is made of. Only built-in result types
/// (oid, name, "char", oid[], name[]), so reading it needs no lookup of its own. Runs on every
/// supported server version (no `pg_range.rngmultitypid`, which is 14+: multiranges read as
/// base types).
const TYPE_QUERY: &str = "\
SELECT t.oid, t.typname, n.nspname, t.typtype, t.typcategory, t.typbasetype, t.typelem, \
       r.rngsubtype, \
       (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) \
          FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid), \
       (SELECT array_agg(a.attname ORDER BY a.attnum) \
          FROM pg_catalog.pg_attribute a \
         WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), \
       (SELECT array_agg(a.atttypid ORDER BY a.attnum) \
          FROM pg_catalog.pg_attribute a \
         WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) \
  FROM pg_catalog.pg_type t \
  JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
  LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid \
 WHERE t.oid = ANY($1)";

/// Rounds of lookups for what the looked-up types are made of (a domain's base, an array's
/// element, a composite's fields): deeper nesting is left unresolved rather than chased
/// without end.
const MAX_LOOKUP_ROUNDS: usize = 8;

/// At most this many OIDs in one lookup: bounds the query a hostile server's RowDescription
/// could make us send.
const MAX_OIDS_PER_LOOKUP: usize = 1_000;

/// One row of [`TYPE_QUERY`].
struct TypeRow {
    name: String,
    schema: String,
    typtype: u8,
    category: u8,
    base: u32,
    element: u32,
    range_subtype: Option<u32>,
    labels: Option<Vec<String>>,
    field_names: Option<Vec<String>>,
    field_types: Option<Vec<u32>>,
}

impl Connection {
    /// The type cache this connection resolves types through.
    pub fn type_cache(&self) -> &Arc<TypeCache> {
        &self.types
    }

    /// Makes this connection look types up through `cache` (a pool passes the one it shares
    /// between its connections). Types already resolved in cached statements are kept.
    pub fn set_type_cache(&mut self, cache: Arc<TypeCache>) {
        self.types = cache;
    }

    /// Whether any of `types` is neither built in nor cached.
    pub(super) fn needs_lookup<'t>(&self, mut types: impl Iterator<Item = &'t Type>) -> bool {
        types.any(|t| t.is_unresolved() && self.types.get(t.oid()).is_none())
    }

    /// The statement's parameter and column types with every unresolved type the cache knows
    /// replaced by the looked-up one. Allocates only when something changes.
    pub(super) fn resolve_described(
        &self,
        params: Box<[Type]>,
        columns: Option<Arc<[Column]>>,
    ) -> (Box<[Type]>, Option<Arc<[Column]>>) {
        let params = if params.iter().any(Type::is_unresolved) {
            params.iter().map(|t| self.types.resolve(t)).collect()
        } else {
            params
        };
        (params, columns.map(|c| self.resolve_columns(c)))
    }

    /// `columns` with looked-up types; the same `Arc` when nothing changes.
    pub(super) fn resolve_columns(&self, columns: Arc<[Column]>) -> Arc<[Column]> {
        if !columns.iter().any(|c| c.type_().is_unresolved()) {
            return columns;
        }
        columns
            .iter()
            .map(|c| c.with_type(self.types.resolve(c.type_())))
            .collect()
    }

    /// Looks up the described types the cache lacks, then resolves them all. Call only with
    /// no request pending.
    pub(super) async fn lookup_described(
        &mut self,
        params: Box<[Type]>,
        columns: Option<Arc<[Column]>>,
    ) -> Result<(Box<[Type]>, Option<Arc<[Column]>>)> {
        let wanted: Vec<u32> = params
            .iter()
            .chain(columns.iter().flat_map(|c| c.iter().map(Column::type_)))
            .filter(|t| t.is_unresolved())
            .map(Type::oid)
            .collect();
        self.lookup_types(wanted).await?;
        Ok(self.resolve_described(params, columns))
    }

    /// A result read before its types were looked up (simple query, one-trip execute): looks
    /// them up and gives its rows the resolved columns.
    pub(super) async fn lookup_result(&mut self, result: QueryResult) -> Result<QueryResult> {
        let cols = result.columns();
        if !self.needs_lookup(cols.iter().map(Column::type_)) {
            return Ok(match result.shared_columns() {
                Some(c) if c.iter().any(|c| c.type_().is_unresolved()) => {
                    let resolved = self.resolve_columns(c);
                    result.with_columns(resolved)
                }
                _ => result,
            });
        }
        let wanted = cols
            .iter()
            .map(Column::type_)
            .filter(|t| t.is_unresolved())
            .map(Type::oid)
            .collect();
        self.lookup_types(wanted).await?;
        Ok(match result.shared_columns() {
            Some(c) => {
                let resolved = self.resolve_columns(c);
                result.with_columns(resolved)
            }
            None => result,
        })
    }

    /// Looks up `oids` (and what they are made of) and puts the types into the cache.
    async fn lookup_types(&mut self, oids: Vec<u32>) -> Result<()> {
        let mut rows: HashMap<u32, TypeRow> = HashMap::new();
        let mut asked: HashSet<u32> = HashSet::new();
        let mut pending: Vec<u32> = oids;
        for _ in 0..MAX_LOOKUP_ROUNDS {
            pending.retain(|&oid| {
                !Type::from_oid(oid).is_builtin()
                    && self.types.get(oid).is_none()
                    && asked.insert(oid)
            });
            pending.truncate(MAX_OIDS_PER_LOOKUP);
            if pending.is_empty() {
                break;
            }
            let found = self.fetch_types(&pending).await?;
            let mut next = Vec::new();
            for (oid, row) in found {
                next.extend([row.base, row.element].into_iter().filter(|&o| o != 0));
                next.extend(row.range_subtype);
                next.extend(row.field_types.iter().flatten().copied());
                rows.insert(oid, row);
            }
            pending = next;
        }
        let mut built = HashMap::new();
        let oids: Vec<u32> = rows.keys().copied().collect();
        for oid in oids {
            let ty = build(oid, &rows, &self.types, &mut built, 0);
            self.types.insert(ty);
        }
        Ok(())
    }

    /// Runs [`TYPE_QUERY`] for `oids` through the unnamed statement, in one round trip.
    async fn fetch_types(&mut self, oids: &[u32]) -> Result<Vec<(u32, TypeRow)>> {
        self.types.count_lookup();
        self.clear_write_buf();
        self.write_pending_closes()?;
        frontend::parse(
            "",
            TYPE_QUERY,
            std::iter::once(Type::OID_ARRAY.oid()),
            &mut self.write_buf,
        )?;
        frontend::describe(STATEMENT, "", &mut self.write_buf)?;
        let stmt = Statement {
            name: "".into(),
            params: Box::new([Type::OID_ARRAY]),
            columns: None,
        };
        if let Err(e) = self.write_bind_execute(&stmt, &[&oids]) {
            self.clear_write_buf();
            return Err(e);
        }
        frontend::sync(&mut self.write_buf);
        self.send(Owes::SYNC).await?;
        let result = match self.read_describe().await {
            Ok((_, columns)) => self.read_execute_response(columns).await?,
            Err(e) if !e.is_closed() => {
                self.read_until_ready().await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        result
            .rows()
            .iter()
            .map(|r| {
                let byte = |i: usize| r.try_get::<_, i8>(i).map(|c| c as u8);
                Ok((
                    r.try_get::<_, u32>(0)?,
                    TypeRow {
                        name: r.try_get(1)?,
                        schema: r.try_get(2)?,
                        typtype: byte(3)?,
                        category: byte(4)?,
                        base: r.try_get(5)?,
                        element: r.try_get(6)?,
                        range_subtype: r.try_get(7)?,
                        labels: r.try_get(8)?,
                        field_names: r.try_get(9)?,
                        field_types: r.try_get(10)?,
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()
            .map_err(|e: Error| Error::protocol(format!("reading the pg_type lookup: {e}")))
    }
}

/// The type `oid` from the looked-up rows, building what it is made of first. A type that is
/// missing from the rows (not found, or beyond the depth cap) stays unresolved.
fn build(
    oid: u32,
    rows: &HashMap<u32, TypeRow>,
    cache: &TypeCache,
    built: &mut HashMap<u32, Type>,
    depth: usize,
) -> Type {
    let plain = Type::from_oid(oid);
    if plain.is_builtin() {
        return plain;
    }
    if let Some(t) = built.get(&oid).or(cache.get(oid).as_ref()) {
        return t.clone();
    }
    let Some(row) = rows.get(&oid) else {
        return plain;
    };
    if depth > MAX_LOOKUP_ROUNDS {
        return plain;
    }
    let mut sub = |o: u32| build(o, rows, cache, built, depth + 1);
    let qualified = if row.schema == "public" || row.schema == "pg_catalog" {
        row.name.clone()
    } else {
        format!("{}.{}", row.schema, row.name)
    };
    let (name, kind) = match row.typtype {
        b'e' => (
            qualified,
            Kind::Enum(row.labels.clone().unwrap_or_default()),
        ),
        b'd' => (qualified, Kind::Domain(sub(row.base))),
        b'r' => match row.range_subtype {
            Some(s) => (qualified, Kind::Range(sub(s))),
            None => (qualified, Kind::Base),
        },
        b'c' => {
            let names = row.field_names.clone().unwrap_or_default();
            let types = row.field_types.clone().unwrap_or_default();
            let fields = names
                .into_iter()
                .zip(types)
                .map(|(n, t)| Field::new(n, sub(t)))
                .collect();
            (qualified, Kind::Composite(fields))
        }
        b'b' if row.category == b'A' && row.element != 0 => {
            let e = sub(row.element);
            (format!("{e}[]"), Kind::Array(e))
        }
        _ => (qualified, Kind::Base),
    };
    let ty = Type::other(oid, name, kind);
    built.insert(oid, ty.clone());
    ty
}
