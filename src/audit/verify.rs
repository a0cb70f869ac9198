//! `callvault audit verify`: re-hashes the chain in the database and in the store, checks
//! that each record names its predecessor's hash and that the two copies agree, and names the
//! first record where anything is wrong.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use serde::Serialize;

use super::chain::{GENESIS_HASH, head, records_after};
use super::entry::AuditRecord;
use super::inbox::unchained;
use super::store_copy::{BATCH, CopyError, flushed_seq, range_of};
use crate::queue::Db;
use crate::storage::{Archive, layout};

/// The first place a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
}

/// One copy of the chain, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Records read.
    pub records: i64,
    /// Objects read (the store only).
    pub objects: usize,
    /// The newest seq read.
    pub last_seq: i64,
    pub broken: Option<Broken>,
}

/// Both copies checked, and how far they reach.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub database: ChainReport,
    pub store: ChainReport,
    /// Records in the database the store copy does not have yet (flushed periodically).
    pub not_yet_copied: i64,
    /// Records in the store that the database no longer has (a database restored from an
    /// older backup, or lost): the store's copy is then the trail.
    pub only_in_store: i64,
    /// Records still in the inbox, written but not chained yet, hence in neither copy.
    pub not_yet_chained: i64,
}

impl Verification {
    pub fn is_intact(&self) -> bool {
        self.database.broken.is_none() && self.store.broken.is_none()
    }

    /// The first broken seq in either copy.
    pub fn first_broken(&self) -> Option<&Broken> {
        [&self.database.broken, &self.store.broken]
            .into_iter()
            .flatten()
            .min_by_key(|broken| broken.seq)
    }
}

/// Walks records in order and checks each against the one before.
#[derive(Debug)]
struct Walk {
    last_seq: i64,
    last_hash: String,
}

impl Walk {
    fn new() -> Self {
        Self {
            last_seq: 0,
            last_hash: GENESIS_HASH.to_owned(),
        }
    }

    fn step(&mut self, record: &AuditRecord) -> Result<(), Broken> {
        let expected = self.last_seq + 1;
        let broken = |reason: String| Broken {
            seq: record.seq.min(expected),
            reason,
        };
        if record.seq != expected {
            return Err(broken(format!(
                "record {expected} is missing (the next record found is {})",
                record.seq
            )));
        }
        if record.prev_hash != self.last_hash {
            return Err(broken(format!(
                "record {} does not name the hash of record {} (the record before was changed, removed or replaced)",
                record.seq, self.last_seq
            )));
        }
        if record.expected_hash() != record.hash {
            return Err(broken(format!(
                "record {} does not match its hash (its contents were changed)",
                record.seq
            )));
        }
        self.last_seq = record.seq;
        self.last_hash = record.hash.clone();
        Ok(())
    }
}

/// Checks the chain in the database, and the head row against its newest record.
pub async fn verify_database(db: &Db) -> Result<ChainReport, CopyError> {
    let mut report = ChainReport::default();
    let mut walk = Walk::new();
    loop {
        let records = records_after(db, report.last_seq, BATCH).await?;
        if records.is_empty() {
            break;
        }
        for record in &records {
            report.records += 1;
            report.last_seq = record.seq;
            if let Err(broken) = walk.step(record) {
                report.broken = Some(broken);
                return Ok(report);
            }
        }
    }
    let (head_seq, head_hash) = head(db).await?;
    if head_seq != walk.last_seq || head_hash != walk.last_hash {
        report.broken = Some(Broken {
            seq: walk.last_seq + 1,
            reason: format!(
                "the chain head names record {head_seq}, but the newest record is {} (records were removed from the end, or the head was changed)",
                walk.last_seq
            ),
        });
    }
    Ok(report)
}

/// The store's audit objects by first seq; keys that are not audit objects are reported.
async fn store_objects(archive: &Archive) -> Result<BTreeMap<i64, (i64, String)>, CopyError> {
    let folder = layout::object_key(archive.audit_folder().trim_end_matches('/'));
    let metas: Vec<_> = archive
        .store()
        .list(Some(&folder))
        .try_collect()
        .await
        .map_err(crate::storage::StorageError::from)?;
    let mut objects = BTreeMap::new();
    for meta in metas {
        let key = meta.location.to_string();
        if let Some((first, last)) = range_of(&key) {
            objects.insert(first, (last, key));
        }
    }
    Ok(objects)
}

/// Checks the store's objects: each record re-hashed, each object continuing the one before,
/// each record equal to the database's record of the same seq where it has one.
pub async fn verify_store(db: &Db, archive: &Archive) -> Result<(ChainReport, i64), CopyError> {
    let mut report = ChainReport::default();
    let mut walk = Walk::new();
    let mut only_in_store = 0;
    for (first, (last, key)) in store_objects(archive).await? {
        report.objects += 1;
        let text = archive.read(&layout::object_key(&key)).await?;
        let mut records = Vec::new();
        for (index, line) in String::from_utf8_lossy(&text).lines().enumerate() {
            match serde_json::from_str::<AuditRecord>(line) {
                Ok(record) => records.push(record),
                Err(err) => {
                    report.broken = Some(Broken {
                        seq: first + index as i64,
                        reason: format!(
                            "line {} of {key} is not an audit record: {err}",
                            index + 1
                        ),
                    });
                    return Ok((report, only_in_store));
                }
            }
        }
        let held: Vec<i64> = records.iter().map(|record| record.seq).collect();
        if held.first() != Some(&first) || held.last() != Some(&last) {
            report.broken = Some(Broken {
                seq: first,
                reason: format!(
                    "{key} should hold records {first} to {last} but holds {}",
                    match (held.first(), held.last()) {
                        (Some(a), Some(b)) => format!("{a} to {b}"),
                        _ => "none".to_owned(),
                    }
                ),
            });
            return Ok((report, only_in_store));
        }
        let in_db: BTreeMap<i64, AuditRecord> = records_after(db, first - 1, last - first + 1)
            .await?
            .into_iter()
            .map(|record| (record.seq, record))
            .collect();
        for record in &records {
            report.records += 1;
            report.last_seq = record.seq;
            if let Err(mut broken) = walk.step(record) {
                broken.reason = format!("{} (in {key})", broken.reason);
                report.broken = Some(broken);
                return Ok((report, only_in_store));
            }
            match in_db.get(&record.seq) {
                Some(stored) if stored != record => {
                    report.broken = Some(Broken {
                        seq: record.seq,
                        reason: format!(
                            "record {} in {key} differs from the database's record {}",
                            record.seq, record.seq
                        ),
                    });
                    return Ok((report, only_in_store));
                }
                Some(_) => {}
                None => only_in_store += 1,
            }
        }
    }
    let copied = flushed_seq(db).await?;
    if report.broken.is_none() && walk.last_seq < copied {
        report.broken = Some(Broken {
            seq: walk.last_seq + 1,
            reason: format!(
                "records {} to {copied} were copied to the store but are not there",
                walk.last_seq + 1
            ),
        });
    }
    Ok((report, only_in_store))
}

/// Both copies, and what still waits in the inbox (chain it first with
/// [`chain_pending`](super::chain_pending) to check everything written so far).
pub async fn verify(db: &Db, archive: &Archive) -> Result<Verification, CopyError> {
    let database = verify_database(db).await?;
    let (store, only_in_store) = verify_store(db, archive).await?;
    let not_yet_copied = (database.last_seq - store.last_seq).max(0);
    let not_yet_chained = unchained(db).await?;
    Ok(Verification {
        database,
        store,
        not_yet_copied,
        only_in_store,
        not_yet_chained,
    })
}
