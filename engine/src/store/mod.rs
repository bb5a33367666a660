//! Persistence. One store API over two backends through sqlx's `Any` driver: an embedded
//! SQLite file (the default: WAL, created and migrated on first start) and PostgreSQL (for
//! production and for several controller instances sharing one database).
//!
//! SQL is written once in the common dialect: `$N` parameters, `BIGINT` integers (decoded as
//! `i64` on both), timestamps as UTC milliseconds. Schemas differ only in DDL, so each
//! backend has its own migrations folder under `migrations/`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection};

use crate::error::{Error, Result, ValidationError};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Recognises `sqlite:` and `postgres:`/`postgresql:` URLs.
    pub fn of_url(url: &str) -> Result<Self, ValidationError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(ValidationError::new(
                "database_url",
                "expected sqlite://PATH or postgres://USER@HOST:PORT/DB",
            ))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A connection pool to the controller's database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects (creating an SQLite file if missing) without migrating.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let url = match backend {
            // Create the file on first start unless the caller chose a mode.
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let mut options = AnyConnectOptions::from_str(&url)?;
        options = options
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed while the engine writes; NORMAL sync is
                        // durable across process crashes (not power loss of the last commit).
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 10000",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend })
    }

    /// Connects and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Refreshes the planner's statistics (after bulk changes such as seeding), so filtered
    /// and sorted lists use their indexes.
    pub async fn analyze(&self) -> Result<()> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that will write. Every state change starts here, not with
    /// `pool().begin()`: SQLite's plain `BEGIN` is deferred, so a transaction that reads
    /// before it writes takes its snapshot at the read, and if any other connection commits
    /// before its first write (agents report all the time) the write fails at once with
    /// `SQLITE_BUSY_SNAPSHOT`, whatever the busy timeout. `BEGIN IMMEDIATE` takes the write
    /// lock up front, waiting up to the busy timeout, so the read and the write see the same
    /// data. PostgreSQL's row locks need nothing extra.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        conn.ping().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Converts a stored non-negative count to `u64`; a negative value would be a bug, read as 0.
pub(crate) fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Converts a stored small count to `u32`, saturating.
pub(crate) fn small(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// Parses a stored enumeration; a value the code does not know is a corrupt row.
pub(crate) fn parse_col<T: FromStr<Err = ValidationError>>(col: &str, v: &str) -> Result<T> {
    v.parse::<T>().map_err(|e| {
        Error::Store(sqlx::Error::Decode(
            format!("column {col}: {}", e.message).into(),
        ))
    })
}

/// Escapes LIKE wildcards so user text matches literally.
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Lowercases user text for `LOWER(col) LIKE` the way the backend's `LOWER` does: SQLite
/// folds only ASCII letters, PostgreSQL all of Unicode.
pub(crate) fn fold_case(backend: Backend, s: &str) -> String {
    match backend {
        Backend::Sqlite => s.to_ascii_lowercase(),
        Backend::Postgres => s.to_lowercase(),
    }
}

/// Builds SQL with `$N` placeholders and its arguments together. (sqlx's `QueryBuilder`
/// writes `?` for the `Any` driver, which PostgreSQL rejects.)
pub(crate) struct Sql<'q> {
    text: String,
    args: sqlx::any::AnyArguments<'q>,
    count: usize,
    error: Option<sqlx::error::BoxDynError>,
}

impl<'q> Sql<'q> {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            args: Default::default(),
            count: 0,
            error: None,
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        use sqlx::Arguments;
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert(e);
        }
        self.count += 1;
        self.text.push('$');
        self.text.push_str(&self.count.to_string());
        self
    }

    /// Binds the next value of a parenthesised list: a comma first unless the list just opened.
    pub fn item<T>(&mut self, value: T) -> &mut Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        if !self.text.trim_end().ends_with('(') {
            self.text.push_str(", ");
        }
        self.bind(value)
    }

    /// The SQL text and its arguments, or the first encoding error.
    pub fn finish(self) -> Result<(String, sqlx::any::AnyArguments<'q>)> {
        match self.error {
            Some(e) => Err(Error::Store(sqlx::Error::Encode(e))),
            None => Ok((self.text, self.args)),
        }
    }
}

/// A value of a bulk statement row (rows mix integers and text).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
}

impl Sql<'_> {
    fn cell(&mut self, c: Cell) -> &mut Self {
        match c {
            Cell::Int(v) => self.item(v),
            Cell::OptInt(v) => self.item(v),
            Cell::Text(v) => self.item(v),
        }
    }

    /// ` (1, 2, 3)`: a parenthesised list of bound ids, for `IN`.
    pub fn in_list(&mut self, ids: &[i64]) -> &mut Self {
        self.push(" (");
        for id in ids {
            self.item(*id);
        }
        self.push(")")
    }

    /// `(a, b), (c, d), …`: rows of bound values.
    fn rows(&mut self, rows: impl Iterator<Item = Vec<Cell>>) -> &mut Self {
        for (i, row) in rows.enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push("(");
            for c in row {
                self.cell(c);
            }
            self.push(")");
        }
        self
    }
}

/// Rows per bulk statement: well under both backends' parameter limits.
const BULK_ROWS: usize = 400;

/// Updates many rows by key in the caller's transaction. Each row is the key followed by the
/// new values of `set_cols`.
///
/// PostgreSQL: `UPDATE … FROM (VALUES …)` a few hundred rows per statement (one round trip
/// each instead of one per row). SQLite: one cached prepared `UPDATE … WHERE key = $1` per row,
/// which is in-process and cheap; its planner would scan the whole table for every VALUES row
/// of the joined form (measured: seconds per tick at 20,000 subclouds).
pub(crate) async fn bulk_update(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    table: &str,
    key: &str,
    set_cols: &[&str],
    rows: Vec<Vec<Cell>>,
) -> Result<()> {
    bulk_update_guarded(tx, backend, table, key, set_cols, &[], "", rows).await
}

/// [`bulk_update`] that changes a row only if it also matches: each row ends with values that
/// `guard_cols` must equal, and `extra` (fixed SQL over the table's own columns, e.g.
/// `state IN ('queued', 'running')`) must hold. Rows that do not match are left alone.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn bulk_update_guarded(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    table: &str,
    key: &str,
    set_cols: &[&str],
    guard_cols: &[&str],
    extra: &str,
    rows: Vec<Vec<Cell>>,
) -> Result<()> {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(" AND {extra}")
    };
    if backend == Backend::Sqlite {
        let assignments: Vec<String> = set_cols
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 2))
            .collect();
        let guards: String = guard_cols
            .iter()
            .enumerate()
            .map(|(i, c)| format!(" AND {c} = ${}", i + 2 + set_cols.len()))
            .collect();
        let sql = format!(
            "UPDATE {table} SET {} WHERE {key} = $1{guards}{extra}",
            assignments.join(", ")
        );
        for row in rows {
            let mut q = sqlx::query(&sql);
            for c in row {
                q = match c {
                    Cell::Int(v) => q.bind(v),
                    Cell::OptInt(v) => q.bind(v),
                    Cell::Text(v) => q.bind(v),
                };
            }
            q.execute(&mut **tx).await?;
        }
        return Ok(());
    }
    // Derived VALUES columns are named `column1…` on PostgreSQL.
    let assignments: Vec<String> = set_cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = v.column{}", i + 2))
        .collect();
    let guards: String = guard_cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!(" AND {table}.{c} = v.column{}", i + 2 + set_cols.len()))
        .collect();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut b = Sql::new(format!(
            "UPDATE {table} SET {} FROM (VALUES ",
            assignments.join(", ")
        ));
        b.rows(rows.by_ref().take(BULK_ROWS));
        b.push(&format!(
            ") AS v WHERE {table}.{key} = v.column1{guards}{extra}"
        ));
        let (sql, args) = b.finish()?;
        sqlx::query_with(&sql, args).execute(&mut **tx).await?;
    }
    Ok(())
}

/// `INSERT … VALUES … RETURNING <returning>` in chunks: every returned row.
pub(crate) async fn bulk_insert_returning(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    cols: &[&str],
    rows: Vec<Vec<Cell>>,
    returning: &str,
) -> Result<Vec<sqlx::any::AnyRow>> {
    let mut out = Vec::with_capacity(rows.len());
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut b = Sql::new(format!("INSERT INTO {table} ({}) VALUES ", cols.join(", ")));
        b.rows(rows.by_ref().take(BULK_ROWS));
        b.push(" RETURNING ").push(returning);
        let (sql, args) = b.finish()?;
        out.extend(sqlx::query_with(&sql, args).fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

/// `INSERT INTO table (cols…) VALUES … <suffix>` in chunks (suffix e.g. an `ON CONFLICT`);
/// returns how many rows were inserted (`ON CONFLICT DO NOTHING` skips count as none).
pub(crate) async fn bulk_insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    cols: &[&str],
    rows: Vec<Vec<Cell>>,
    suffix: &str,
) -> Result<u64> {
    let mut inserted = 0;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut b = Sql::new(format!("INSERT INTO {table} ({}) VALUES ", cols.join(", ")));
        b.rows(rows.by_ref().take(BULK_ROWS));
        b.push(suffix);
        let (sql, args) = b.finish()?;
        inserted += sqlx::query_with(&sql, args)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    Ok(inserted)
}

/// Runs `head … IN (ids) tail` over `ids` in chunks, `bind` adding the parameters that come
/// before the list. Returns the rows affected.
pub(crate) async fn execute_for_ids(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ids: &[i64],
    build: impl Fn(&mut Sql<'_>),
) -> Result<u64> {
    let mut affected = 0;
    for chunk in ids.chunks(BULK_ROWS) {
        let mut b = Sql::new("");
        build(&mut b);
        b.in_list(chunk);
        let (sql, args) = b.finish()?;
        affected += sqlx::query_with(&sql, args)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    Ok(affected)
}

/// Like [`execute_for_ids`] for a query: all rows of every chunk.
pub(crate) async fn fetch_for_ids(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ids: &[i64],
    head: &str,
) -> Result<Vec<sqlx::any::AnyRow>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(BULK_ROWS) {
        let mut b = Sql::new(head);
        b.in_list(chunk);
        let (sql, args) = b.finish()?;
        out.extend(sqlx::query_with(&sql, args).fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_wildcards_are_literal() {
        assert_eq!(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
    }
}
