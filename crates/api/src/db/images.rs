//! The `images`, `image_properties` and `image_tags` rows of an image, read and written as
//! one [`Image`]. Every change is fenced on the row's `version` (an UPDATE that names the
//! version it read), so two writers never lose each other's change silently.
//!
//! The properties and tags are also kept as JSON on the image's row (`props_json`,
//! `tags_json`), written in the transaction that writes the child rows: reads take them
//! with the row, while the child tables serve the indexed `tag=` and property filters.

use super::docs::{Doc, Docs};
use super::sqlite_reads::to_sqlx;
use super::{bind_args, bind_pg, placeholders, Db, Reads};
use crate::domain::image::{status, Image};
use crate::domain::list::{Arg, Dir, Filter, ListQuery, SortKey, VisFilter};
use sqlx::postgres::PgRow;
use sqlx::Row;
use std::sync::Arc;

const COLUMNS: &str = "i.id, i.name, i.owner, i.status, i.visibility, i.protected, i.os_hidden, \
     i.disk_format, i.container_format, i.size, i.virtual_size, i.checksum, i.os_hash_algo, \
     i.os_hash_value, i.min_disk, i.min_ram, i.created_at, i.updated_at, i.version";

/// The columns of a row by position, for each engine's hot-read row type (see
/// [`super::Reads`]): rusqlite's and the native PostgreSQL driver's.
trait Cols {
    fn str(&self, i: usize) -> Result<&str, sqlx::Error>;
    fn text(&self, i: usize) -> Result<String, sqlx::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, i: usize) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, sqlx::Error>;
    /// A JSON text column parsed as `T`; None for NULL.
    fn json<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<Option<T>, sqlx::Error>;
}

fn decode_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

impl Cols for PgRow {
    fn str(&self, i: usize) -> Result<&str, sqlx::Error> {
        self.try_get(i)
    }
    fn text(&self, i: usize) -> Result<String, sqlx::Error> {
        self.try_get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error> {
        self.try_get(i)
    }
    fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
        self.try_get(i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(i)
    }
    fn json<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<Option<T>, sqlx::Error> {
        self.try_get::<Option<&str>, _>(i)?
            .map(decode_json)
            .transpose()
    }
}

impl Cols for rusqlite::Row<'_> {
    fn str(&self, i: usize) -> Result<&str, sqlx::Error> {
        let v = self.get_ref(i).map_err(to_sqlx)?;
        v.as_str().map_err(|e| {
            to_sqlx(rusqlite::Error::FromSqlConversionFailure(
                i,
                v.data_type(),
                Box::new(e),
            ))
        })
    }
    fn text(&self, i: usize) -> Result<String, sqlx::Error> {
        self.get(i).map_err(to_sqlx)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error> {
        self.get(i).map_err(to_sqlx)
    }
    fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
        self.get(i).map_err(to_sqlx)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, sqlx::Error> {
        self.get(i).map_err(to_sqlx)
    }
    fn json<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<Option<T>, sqlx::Error> {
        let v = self.get_ref(i).map_err(to_sqlx)?;
        v.as_str_or_null()
            .map_err(|e| {
                to_sqlx(rusqlite::Error::FromSqlConversionFailure(
                    i,
                    v.data_type(),
                    Box::new(e),
                ))
            })?
            .map(decode_json)
            .transpose()
    }
}

/// An image row selected as [`COLUMNS`] followed by [`EXTRAS`] (properties and tags).
fn from_row(r: &impl Cols) -> Result<Image, sqlx::Error> {
    let mut tags: Vec<String> = r.json(20)?.unwrap_or_default();
    tags.sort();
    Ok(Image {
        id: r.text(0)?,
        name: r.opt_text(1)?,
        owner: r.text(2)?,
        status: r.text(3)?,
        visibility: r.text(4)?,
        protected: r.int(5)? != 0,
        os_hidden: r.int(6)? != 0,
        disk_format: r.opt_text(7)?,
        container_format: r.opt_text(8)?,
        size: r.opt_int(9)?,
        virtual_size: r.opt_int(10)?,
        checksum: r.opt_text(11)?,
        os_hash_algo: r.opt_text(12)?,
        os_hash_value: r.opt_text(13)?,
        min_disk: r.int(14)?,
        min_ram: r.int(15)?,
        created_at: r.text(16)?,
        updated_at: r.text(17)?,
        version: r.int(18)?,
        properties: r.json(19)?.unwrap_or_default(),
        tags,
    })
}

/// The document of an image row selected as [`from_row`] reads it: the one already
/// rendered from this version of the row, else the row decoded and rendered.
fn doc_of(r: &impl Cols, docs: &Docs) -> Result<Arc<Doc>, sqlx::Error> {
    if let Some(d) = docs.get(r.str(0)?, r.int(18)?, r.str(16)?, r.str(17)?) {
        return Ok(d);
    }
    docs.put(&from_row(r)?)
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Column of `get_as`'s membership status, after [`from_row`]'s.
const MEMBER_STATUS: usize = 21;

/// Runs a SELECT of image rows (`$N` placeholders bound from `args`) on a SQLite read
/// connection.
fn sqlite_images(
    c: &rusqlite::Connection,
    sql: &str,
    args: &[Arg],
    mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<(), sqlx::Error>,
) -> Result<(), sqlx::Error> {
    let mut st = c.prepare_cached(sql).map_err(to_sqlx)?;
    let mut name = String::new();
    for (n, a) in args.iter().enumerate() {
        name.clear();
        name.push('$');
        name.push_str(&(n + 1).to_string());
        // A value the statement does not name (the project of a `public` filter) is
        // not bound: SQLite numbers its `$N` parameters by first appearance.
        if let Some(i) = st.parameter_index(&name).map_err(to_sqlx)? {
            match a {
                Arg::Text(s) => st.raw_bind_parameter(i, s.as_str()),
                Arg::Int(v) => st.raw_bind_parameter(i, v),
            }
            .map_err(to_sqlx)?;
        }
    }
    let mut rows = st.raw_query();
    while let Some(r) = rows.next().map_err(to_sqlx)? {
        each(r)?;
    }
    Ok(())
}

/// Binds the core columns in the order both `insert` and `update` name them: name, owner,
/// status, visibility, protected, os_hidden, disk_format, container_format, size,
/// virtual_size, checksum, os_hash_algo, os_hash_value, min_disk, min_ram.
fn bind_core<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    img: &'q Image,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(&img.name)
        .bind(&img.owner)
        .bind(&img.status)
        .bind(&img.visibility)
        .bind(img.protected as i64)
        .bind(img.os_hidden as i64)
        .bind(&img.disk_format)
        .bind(&img.container_format)
        .bind(img.size)
        .bind(img.virtual_size)
        .bind(&img.checksum)
        .bind(&img.os_hash_algo)
        .bind(&img.os_hash_value)
        .bind(img.min_disk)
        .bind(img.min_ram)
}

/// Inserts a new image with its properties and tags (409 if the id exists).
pub async fn insert(db: &Db, img: &Image) -> Result<(), sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let q = sqlx::query(
        "INSERT INTO images (id, name, owner, status, visibility, protected, os_hidden, \
         disk_format, container_format, size, virtual_size, checksum, os_hash_algo, \
         os_hash_value, min_disk, min_ram, created_at, updated_at, version, props_json, \
         tags_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20, $21)",
    )
    .bind(&img.id);
    let (props, tags) = extras_json(img);
    bind_core(q, img)
        .bind(&img.created_at)
        .bind(&img.updated_at)
        .bind(img.version)
        .bind(props)
        .bind(tags)
        .execute(&mut *tx)
        .await?;
    write_extras(&mut tx, img).await?;
    tx.commit().await
}

async fn write_extras(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    img: &Image,
) -> Result<(), sqlx::Error> {
    for (k, v) in &img.properties {
        sqlx::query("INSERT INTO image_properties (image_id, name, value) VALUES ($1, $2, $3)")
            .bind(&img.id)
            .bind(k)
            .bind(v)
            .execute(&mut **tx)
            .await?;
    }
    for t in &img.tags {
        sqlx::query("INSERT INTO image_tags (image_id, value, created_at) VALUES ($1, $2, $3)")
            .bind(&img.id)
            .bind(t)
            .bind(&img.updated_at)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The image `id` with its properties and tags.
pub async fn get(db: &Db, id: &str) -> Result<Option<Image>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS}, {} FROM images i WHERE i.id = $1", EXTRAS);
    match db.reads() {
        Reads::Sqlite(reads) => {
            let args = [Arg::Text(id.to_string())];
            reads.read(|c| {
                let mut out = None;
                sqlite_images(c, &sql, &args, |r| {
                    out = Some(from_row(r)?);
                    Ok(())
                })?;
                Ok(out)
            })
        }
        Reads::Postgres(pg) => {
            let row = sqlx::query(&sql).bind(id).fetch_optional(pg).await?;
            row.as_ref().map(from_row).transpose()
        }
    }
}

/// The image `id` with its properties and tags, and the membership status of `project`
/// in it (None when it is not a member), in one round trip: the show path runs this on
/// every `GET /v2/images/{id}`.
pub async fn get_as(
    db: &Db,
    id: &str,
    project: &str,
) -> Result<Option<(Image, Option<String>)>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, {}, (SELECT m.status FROM image_members m \
         WHERE m.image_id = i.id AND m.member = $2) AS member_status \
         FROM images i WHERE i.id = $1",
        EXTRAS
    );
    match db.reads() {
        Reads::Sqlite(reads) => {
            let args = [Arg::Text(id.to_string()), Arg::Text(project.to_string())];
            reads.read(|c| {
                let mut out = None;
                sqlite_images(c, &sql, &args, |r| {
                    out = Some((from_row(r)?, r.opt_text(MEMBER_STATUS)?));
                    Ok(())
                })?;
                Ok(out)
            })
        }
        Reads::Postgres(pg) => {
            let row = sqlx::query(&sql)
                .bind(id)
                .bind(project)
                .fetch_optional(pg)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let status = row.opt_text(MEMBER_STATUS)?;
            Ok(Some((from_row(&row)?, status)))
        }
    }
}

/// The properties (a JSON object) and tags (a JSON array) of `i`: copies on its row, so a
/// page of images is one index scan. They used to be aggregated from the child tables
/// per row, which cost PostgreSQL 50 index probes per page, most of its time per page
/// (BENCHMARKS.md, the API runs of 2026-12-06).
const EXTRAS: &str = "i.props_json, i.tags_json";

/// The JSON copies of `img`'s properties and tags that its row carries.
fn extras_json(img: &Image) -> (String, String) {
    // Serialising a map of strings and a list of strings cannot fail.
    let props = serde_json::to_string(&img.properties).unwrap_or_else(|_| "{}".into());
    let tags = serde_json::to_string(&img.tags).unwrap_or_else(|_| "[]".into());
    (props, tags)
}

/// Writes `img` (columns, properties, tags) if the stored row is still at `img.version`;
/// false when someone else changed it first. The stored version becomes `img.version + 1`.
pub async fn update(db: &Db, img: &Image) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    // The fenced UPDATE goes first: on SQLite it takes the write lock before any read.
    let q = sqlx::query(
        "UPDATE images SET name = $1, owner = $2, status = $3, visibility = $4, protected = $5, \
         os_hidden = $6, disk_format = $7, container_format = $8, size = $9, virtual_size = $10, \
         checksum = $11, os_hash_algo = $12, os_hash_value = $13, min_disk = $14, min_ram = $15, \
         updated_at = $16, props_json = $17, tags_json = $18, version = version + 1 \
         WHERE id = $19 AND version = $20",
    );
    let (props, tags) = extras_json(img);
    let done = bind_core(q, img)
        .bind(&img.updated_at)
        .bind(props)
        .bind(tags)
        .bind(&img.id)
        .bind(img.version)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("DELETE FROM image_properties WHERE image_id = $1")
        .bind(&img.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM image_tags WHERE image_id = $1")
        .bind(&img.id)
        .execute(&mut *tx)
        .await?;
    write_extras(&mut tx, img).await?;
    tx.commit().await?;
    Ok(true)
}

/// Deletes image `id` and everything hanging off it; false when it was not there.
pub async fn delete(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let n = sqlx::query("DELETE FROM images WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    delete_children(&mut tx, id).await?;
    tx.commit().await?;
    Ok(n > 0)
}

/// Deletes image `id` if it is still `saving` and owned by `owner` (the record an import
/// made before it failed); false otherwise.
pub async fn delete_saving(db: &Db, id: &str, owner: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let n = sqlx::query("DELETE FROM images WHERE id = $1 AND owner = $2 AND status = $3")
        .bind(id)
        .bind(owner)
        .bind(status::SAVING)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n > 0 {
        delete_children(&mut tx, id).await?;
    }
    tx.commit().await?;
    Ok(n > 0)
}

/// Deletes the rows hanging off image `id`: explicit, so nothing depends on the engine's
/// foreign-key setting.
async fn delete_children(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
) -> Result<(), sqlx::Error> {
    for t in [
        "image_properties",
        "image_tags",
        "image_members",
        "image_locations",
    ] {
        sqlx::query(&format!("DELETE FROM {t} WHERE image_id = $1"))
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Moves `id` from one of `from` to `to` (deactivate, reactivate); false when its status
/// was not one of `from`.
pub async fn set_status(
    db: &Db,
    id: &str,
    from: &[&str],
    to: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let args: Vec<Arg> = from.iter().map(|s| Arg::Text(s.to_string())).collect();
    let sql = format!(
        "UPDATE images SET status = $1, updated_at = $2, version = version + 1 \
         WHERE id = $3 AND status IN ({})",
        placeholders(3, args.len())
    );
    let q = sqlx::query(&sql).bind(to).bind(now).bind(id);
    Ok(bind_args(q, &args)
        .execute(db.pool())
        .await?
        .rows_affected()
        > 0)
}

/// Takes the upload of `id`: queued -> saving under `lease` until `expires`; false when
/// the image is not queued.
pub async fn begin_upload(
    db: &Db,
    id: &str,
    lease: &str,
    expires: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE images SET status = $1, upload_owner = $2, upload_expires = $3, updated_at = $4, \
         version = version + 1 WHERE id = $5 AND status = $6",
    )
    .bind(status::SAVING)
    .bind(lease)
    .bind(expires)
    .bind(now)
    .bind(id)
    .bind(status::QUEUED)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Extends the upload lease; false when it was lost (reaped, deleted).
pub async fn extend_upload(
    db: &Db,
    id: &str,
    lease: &str,
    expires: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE images SET upload_expires = $1 WHERE id = $2 AND upload_owner = $3 AND status = $4",
    )
    .bind(expires)
    .bind(id)
    .bind(lease)
    .bind(status::SAVING)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// What a finished upload records.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Bytes.
    pub size: i64,
    /// MD5 hex.
    pub checksum: String,
    /// SHA-512 hex.
    pub sha512: String,
    /// Virtual size, when the data is a disk format we can read.
    pub virtual_size: Option<i64>,
}

/// saving -> active with the data's digests and location, only while `lease` still holds
/// the upload; false otherwise (the caller then removes the stored object).
pub async fn finish_upload(
    db: &Db,
    id: &str,
    lease: &str,
    s: &Stored,
    location: &super::locations::Location,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let n = sqlx::query(
        "UPDATE images SET status = $1, size = $2, checksum = $3, os_hash_algo = $4, \
         os_hash_value = $5, virtual_size = $6, upload_owner = NULL, upload_expires = NULL, \
         updated_at = $7, version = version + 1 WHERE id = $8 AND upload_owner = $9 AND status = $10",
    )
    .bind(status::ACTIVE)
    .bind(s.size)
    .bind(&s.checksum)
    .bind("sha512")
    .bind(&s.sha512)
    .bind(s.virtual_size)
    .bind(now)
    .bind(id)
    .bind(lease)
    .bind(status::SAVING)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    super::locations::replace_in(&mut tx, id, location).await?;
    tx.commit().await?;
    Ok(true)
}

/// saving -> queued after a failed upload, while `lease` holds it.
pub async fn abort_upload(db: &Db, id: &str, lease: &str, now: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE images SET status = $1, upload_owner = NULL, upload_expires = NULL, updated_at = $2, \
         version = version + 1 WHERE id = $3 AND upload_owner = $4 AND status = $5",
    )
    .bind(status::QUEUED)
    .bind(now)
    .bind(id)
    .bind(lease)
    .bind(status::SAVING)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Uploads whose lease expired before `now` (their server died): back to queued. Returns
/// their ids, so the caller can remove what they stored.
pub async fn reap_uploads(db: &Db, now: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, upload_owner FROM images WHERE status = $1 AND upload_expires < $2",
    )
    .bind(status::SAVING)
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: String = r.try_get("id")?;
        let lease: Option<String> = r.try_get("upload_owner")?;
        if let Some(lease) = lease {
            if abort_upload(db, &id, &lease, now).await? {
                out.push(id);
            }
        }
    }
    Ok(out)
}

fn push(a: Arg, args: &mut Vec<Arg>) -> String {
    args.push(a);
    format!("${}", args.len())
}

/// The value of sort key `k` for `img`, as the SQL expression computes it.
fn key_value(img: &Image, k: &SortKey) -> Arg {
    let t = |s: &Option<String>| Arg::Text(s.clone().unwrap_or_default());
    match k.name {
        "name" => t(&img.name),
        "status" => Arg::Text(img.status.clone()),
        "container_format" => t(&img.container_format),
        "disk_format" => t(&img.disk_format),
        "size" => Arg::Int(img.size.unwrap_or(-1)),
        "virtual_size" => Arg::Int(img.virtual_size.unwrap_or(-1)),
        "created_at" => Arg::Text(img.created_at.clone()),
        "updated_at" => Arg::Text(img.updated_at.clone()),
        "visibility" => Arg::Text(img.visibility.clone()),
        "owner" => Arg::Text(img.owner.clone()),
        "min_disk" => Arg::Int(img.min_disk),
        "min_ram" => Arg::Int(img.min_ram),
        "protected" => Arg::Int(img.protected as i64),
        _ => Arg::Text(img.id.clone()),
    }
}

/// One page of the images `project` may list, per `q`, after `marker` (already checked
/// to be visible), as their documents.
pub async fn list(
    db: &Db,
    project: &str,
    q: &ListQuery,
    marker: Option<&Image>,
) -> Result<Vec<Arc<Doc>>, sqlx::Error> {
    let mut args: Vec<Arg> = Vec::new();
    let mut wh: Vec<String> = Vec::new();
    let p = push(Arg::Text(project.to_string()), &mut args);
    let statuses: Vec<String> = q
        .member_status
        .iter()
        .map(|s| push(Arg::Text(s.to_string()), &mut args))
        .collect();
    let member = format!(
        "EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = i.id AND m.member = {p} AND m.status IN ({}))",
        statuses.join(", ")
    );
    let default = format!(
        "(i.visibility = 'public' OR i.owner = {p} OR (i.visibility = 'shared' AND {member}))"
    );
    wh.push(match q.visibility {
        VisFilter::Default => default,
        VisFilter::All => format!("({default} OR i.visibility = 'community')"),
        VisFilter::Public => "i.visibility = 'public'".to_string(),
        VisFilter::Community => "i.visibility = 'community'".to_string(),
        VisFilter::Private => format!("(i.visibility = 'private' AND i.owner = {p})"),
        VisFilter::Shared => format!("(i.visibility = 'shared' AND (i.owner = {p} OR {member}))"),
    });
    for f in &q.filters {
        wh.push(match f {
            Filter::Column(col, v) => format!("i.{col} = {}", push(v.clone(), &mut args)),
            Filter::SizeMin(n) => format!("i.size >= {}", push(Arg::Int(*n), &mut args)),
            Filter::SizeMax(n) => format!("i.size <= {}", push(Arg::Int(*n), &mut args)),
            Filter::Tag(t) => format!(
                "EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = i.id AND t.value = {})",
                push(Arg::Text(t.clone()), &mut args)
            ),
            Filter::Property(k, v) => {
                let k = push(Arg::Text(k.clone()), &mut args);
                let v = push(Arg::Text(v.clone()), &mut args);
                format!(
                    "EXISTS (SELECT 1 FROM image_properties pr WHERE pr.image_id = i.id AND pr.name = {k} AND pr.value = {v})"
                )
            }
        });
    }
    if let Some(m) = marker {
        // Rows strictly after the marker in the sort order: (k1 > v1) OR (k1 = v1 AND
        // k2 > v2) OR ..., with < for descending keys.
        let mut ors = Vec::new();
        for (n, (k, d)) in q.sort.iter().enumerate() {
            let mut ands = Vec::new();
            for (k2, _) in &q.sort[..n] {
                ands.push(format!(
                    "{} = {}",
                    k2.expr,
                    push(key_value(m, k2), &mut args)
                ));
            }
            let op = if *d == Dir::Asc { ">" } else { "<" };
            ands.push(format!(
                "{} {op} {}",
                k.expr,
                push(key_value(m, k), &mut args)
            ));
            ors.push(format!("({})", ands.join(" AND ")));
        }
        wh.push(format!("({})", ors.join(" OR ")));
    }
    let order: Vec<String> = q
        .sort
        .iter()
        .map(|(k, d)| format!("{} {}", k.expr, if *d == Dir::Asc { "ASC" } else { "DESC" }))
        .collect();
    let q_limit = q.limit;
    let limit = push(Arg::Int(q.limit as i64), &mut args);
    let sql = format!(
        "SELECT {COLUMNS}, {} FROM images i WHERE {} ORDER BY {} LIMIT {limit}",
        EXTRAS,
        wh.join(" AND "),
        order.join(", ")
    );
    match db.reads() {
        Reads::Sqlite(reads) => reads.read(|c| {
            let mut out = Vec::with_capacity(q_limit);
            sqlite_images(c, &sql, &args, |r| {
                out.push(doc_of(r, db.docs())?);
                Ok(())
            })?;
            Ok(out)
        }),
        Reads::Postgres(pg) => {
            let rows = bind_pg(sqlx::query(&sql), &args).fetch_all(pg).await?;
            rows.iter().map(|r| doc_of(r, db.docs())).collect()
        }
    }
}

/// Number of images (for metrics and tests).
pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM images")
        .fetch_one(db.pool())
        .await?
        .try_get("n")
}
