//! The manifest hash chain as the store shows it: every signed manifest names the sha256 of the
//! manifest written before it, and the chain must be one line from its first manifest to its
//! head. Checked from the manifests alone (offline), and against the links the database
//! recorded.

use std::collections::{BTreeMap, HashMap};

use futures_util::TryStreamExt;
use object_store::path::Path;

use super::signature::EarlierVersion;
use super::{Archive, StorageError};

/// File name of every manifest.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The chain link one stored manifest claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLink {
    pub key: String,
    /// sha256 of the stored bytes.
    pub sha256: String,
    pub previous: Option<String>,
    /// Links this manifest replaced at its key, oldest first.
    pub earlier_versions: Vec<EarlierVersion>,
}

/// A link as the database recorded it when the manifest was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedLink {
    pub id: i64,
    pub key: String,
    pub sha256: String,
    pub previous: Option<String>,
}

/// What walking the chain found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainReport {
    /// Links walked from the first manifest, in order.
    pub walked: usize,
    /// The last link reached: compare it with the head recorded elsewhere, since removing the
    /// newest manifests leaves a shorter chain that is intact.
    pub head: Option<String>,
    /// Each problem as one sentence.
    pub problems: Vec<String>,
}

/// One link of the chain, present in the store or vouched for by its replacement.
struct Node<'a> {
    sha256: &'a str,
    previous: Option<&'a str>,
    place: String,
}

/// Walks the chain the manifests describe. Replaced manifests count through the
/// `earlierVersions` of the manifest now at their key.
pub fn walk(stored: &[StoredLink]) -> ChainReport {
    let mut nodes = Vec::new();
    for link in stored {
        for earlier in &link.earlier_versions {
            nodes.push(Node {
                sha256: &earlier.sha256,
                previous: earlier.previous_manifest_sha256.as_deref(),
                place: format!("an earlier version of {}", link.key),
            });
        }
        nodes.push(Node {
            sha256: &link.sha256,
            previous: link.previous.as_deref(),
            place: link.key.clone(),
        });
    }
    let mut report = ChainReport::default();
    let mut by_sha: HashMap<&str, &Node> = HashMap::new();
    for node in &nodes {
        if let Some(first) = by_sha.insert(node.sha256, node) {
            report.problems.push(format!(
                "the same manifest (sha256 {}) is both {} and {}",
                node.sha256, first.place, node.place
            ));
        }
    }
    // predecessor (None: the start) → successors, in a stable order for the messages.
    let mut successors: BTreeMap<Option<&str>, Vec<&Node>> = BTreeMap::new();
    for node in &nodes {
        successors.entry(node.previous).or_default().push(node);
    }
    for (previous, next) in &successors {
        if next.len() > 1 {
            let places: Vec<_> = next.iter().map(|node| node.place.as_str()).collect();
            report.problems.push(match previous {
                Some(previous) => format!(
                    "FORK: {} all name {previous} as the manifest before them",
                    places.join(", ")
                ),
                None => format!(
                    "FORK: {} all claim to be the first manifest",
                    places.join(", ")
                ),
            });
        }
        if let Some(previous) = previous
            && !by_sha.contains_key(previous)
        {
            for node in next {
                report.problems.push(format!(
                    "CHAIN BROKEN: the manifest before {} (sha256 {previous}) is not in the store",
                    node.place
                ));
            }
        }
    }
    let mut at = None;
    while let Some(node) = successors.get(&at).and_then(|next| next.first()) {
        report.walked += 1;
        report.head = Some(node.sha256.to_owned());
        if report.walked > nodes.len() {
            break;
        }
        at = Some(node.sha256);
    }
    if !nodes.is_empty() && !successors.contains_key(&None) {
        report
            .problems
            .push("CHAIN BROKEN: no manifest is the first of the chain".to_owned());
    } else if report.walked != nodes.len() {
        report.problems.push(format!(
            "CHAIN BROKEN: {} of {} links cannot be reached from the first manifest",
            nodes.len().saturating_sub(report.walked),
            nodes.len()
        ));
    }
    report
}

/// Compares the links the database recorded, in the order written, with the manifests now in
/// the store (by key). Returns each problem as one sentence.
pub fn compare_with_record(recorded: &[RecordedLink], stored: &[StoredLink]) -> Vec<String> {
    let stored: HashMap<&str, &StoredLink> = stored
        .iter()
        .map(|link| (link.key.as_str(), link))
        .collect();
    let mut problems = Vec::new();
    let mut before: Option<&RecordedLink> = None;
    for (position, link) in recorded.iter().enumerate() {
        let expected = before.map(|link| link.sha256.as_str());
        if link.previous.as_deref() != expected {
            problems.push(format!(
                "CHAIN BROKEN at link #{}: it names {} as the manifest before it, the link recorded before it is {}",
                link.id,
                link.previous.as_deref().unwrap_or("none"),
                expected.unwrap_or("none")
            ));
        }
        before = Some(link);
        let newest_at_key = !recorded[position + 1..]
            .iter()
            .any(|later| later.key == link.key);
        let Some(found) = stored.get(link.key.as_str()) else {
            problems.push(format!("MISSING manifest {} (link #{})", link.key, link.id));
            continue;
        };
        if newest_at_key {
            if found.sha256 != link.sha256 {
                problems.push(format!(
                    "the manifest at {} has sha256 {}, the chain recorded {} (link #{})",
                    link.key, found.sha256, link.sha256, link.id
                ));
            } else if found.previous != link.previous {
                problems.push(format!(
                    "the manifest at {} names {} as before it, the chain recorded {} (link #{})",
                    link.key,
                    found.previous.as_deref().unwrap_or("none"),
                    link.previous.as_deref().unwrap_or("none"),
                    link.id
                ));
            }
        } else {
            let vouched = found.earlier_versions.iter().any(|earlier| {
                earlier.sha256 == link.sha256 && earlier.previous_manifest_sha256 == link.previous
            });
            if !vouched {
                problems.push(format!(
                    "link #{} (sha256 {}, replaced at {}) is not among the earlier versions the manifest now there lists",
                    link.id, link.sha256, link.key
                ));
            }
        }
    }
    problems
}

/// Every manifest key under the archive's prefix, sorted.
pub async fn manifest_keys(archive: &Archive) -> Result<Vec<Path>, StorageError> {
    let prefix = Path::from(archive.prefix.as_str());
    let prefix = (!archive.prefix.is_empty()).then_some(&prefix);
    let mut keys: Vec<Path> = archive
        .store
        .list(prefix)
        .map_ok(|meta| meta.location)
        .try_filter(|key| std::future::ready(key.filename() == Some(MANIFEST_FILE)))
        .try_collect()
        .await?;
    keys.sort();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(key: &str, sha256: &str, previous: Option<&str>) -> StoredLink {
        StoredLink {
            key: key.to_owned(),
            sha256: sha256.to_owned(),
            previous: previous.map(str::to_owned),
            earlier_versions: Vec::new(),
        }
    }

    fn line() -> Vec<StoredLink> {
        vec![
            link("c/1/manifest.json", "a", None),
            link("c/2/manifest.json", "b", Some("a")),
            link("c/3/manifest.json", "c", Some("b")),
        ]
    }

    #[test]
    fn a_single_line_walks_to_its_head() {
        let mut stored = line();
        stored.reverse();
        let report = walk(&stored);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!((report.walked, report.head.as_deref()), (3, Some("c")));
        assert_eq!(walk(&[]), ChainReport::default());
    }

    #[test]
    fn a_removed_link_breaks_the_chain() {
        let mut stored = line();
        stored.remove(1);
        let report = walk(&stored);
        assert_eq!(
            report.problems,
            vec![
                "CHAIN BROKEN: the manifest before c/3/manifest.json (sha256 b) is not in the store",
                "CHAIN BROKEN: 1 of 2 links cannot be reached from the first manifest",
            ]
        );
        let mut first_gone = line();
        first_gone.remove(0);
        assert!(
            walk(&first_gone)
                .problems
                .contains(&"CHAIN BROKEN: no manifest is the first of the chain".to_owned())
        );
    }

    #[test]
    fn two_successors_of_one_link_are_a_fork() {
        let mut stored = line();
        stored.push(link("c/4/manifest.json", "d", Some("b")));
        let report = walk(&stored);
        assert_eq!(
            report.problems,
            vec![
                "FORK: c/3/manifest.json, c/4/manifest.json all name b as the manifest before them",
                "CHAIN BROKEN: 1 of 4 links cannot be reached from the first manifest",
            ]
        );
    }

    #[test]
    fn a_replaced_manifest_is_vouched_for_by_its_successor_at_the_key() {
        // a → b → c, then b's key rewritten as b2 after c.
        let mut stored = line();
        stored[1] = StoredLink {
            earlier_versions: vec![EarlierVersion {
                sha256: "b".into(),
                previous_manifest_sha256: Some("a".into()),
            }],
            ..link("c/2/manifest.json", "b2", Some("c"))
        };
        let report = walk(&stored);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!((report.walked, report.head.as_deref()), (4, Some("b2")));

        let recorded = [
            recorded(1, "c/1/manifest.json", "a", None),
            recorded(2, "c/2/manifest.json", "b", Some("a")),
            recorded(3, "c/3/manifest.json", "c", Some("b")),
            recorded(4, "c/2/manifest.json", "b2", Some("c")),
        ];
        assert_eq!(
            compare_with_record(&recorded, &stored),
            Vec::<String>::new()
        );
        // Without the earlier version listed, the replaced link is unaccounted for.
        stored[1].earlier_versions.clear();
        assert_eq!(compare_with_record(&recorded, &stored).len(), 1);
    }

    fn recorded(id: i64, key: &str, sha256: &str, previous: Option<&str>) -> RecordedLink {
        RecordedLink {
            id,
            key: key.to_owned(),
            sha256: sha256.to_owned(),
            previous: previous.map(str::to_owned),
        }
    }

    #[test]
    fn reordered_links_in_the_record_break_the_chain() {
        let stored = line();
        let mut recorded = vec![
            recorded(1, "c/1/manifest.json", "a", None),
            recorded(2, "c/2/manifest.json", "b", Some("a")),
            recorded(3, "c/3/manifest.json", "c", Some("b")),
        ];
        assert_eq!(
            compare_with_record(&recorded, &stored),
            Vec::<String>::new()
        );
        recorded.swap(1, 2);
        let problems = compare_with_record(&recorded, &stored);
        assert_eq!(
            problems,
            vec![
                "CHAIN BROKEN at link #3: it names b as the manifest before it, the link recorded before it is a",
                "CHAIN BROKEN at link #2: it names a as the manifest before it, the link recorded before it is c",
            ]
        );
    }

    #[test]
    fn a_manifest_other_than_the_recorded_one_is_reported() {
        let mut stored = line();
        stored[2].sha256 = "forged".into();
        let recorded = [
            recorded(1, "c/1/manifest.json", "a", None),
            recorded(2, "c/2/manifest.json", "b", Some("a")),
            recorded(3, "c/3/manifest.json", "c", Some("b")),
        ];
        assert_eq!(
            compare_with_record(&recorded, &stored),
            vec![
                "the manifest at c/3/manifest.json has sha256 forged, the chain recorded c (link #3)"
            ]
        );
        assert_eq!(
            compare_with_record(&recorded, &stored[..2]),
            vec!["MISSING manifest c/3/manifest.json (link #3)"]
        );
    }
}
