//! The names of the locks the worktree manager takes, built and read back
//! in one place: the manager builds them, `ff locks` and `ff serve` say
//! what each one is for.
//!
//! | lock | name | taken for |
//! |---|---|---|
//! | repository node | `ff-<repo key>` | nothing alone: the root of the repository's lock tree |
//! | issue | `ff-<repo key>/issue-<issue segment>` | every operation on one issue's worktree |
//! | registry | `ff-<common dir hash>-registry` | `git worktree add/remove` and `branch -D`, around those calls only |
//! | fetch | `ff-<common dir hash>-fetch` | `git fetch` of a sync |
//! | worktree | `ff-<common dir hash>-worktree-<issue segment>` | taken with the issue's lock, for the git commands run in its worktree in this clone |
//!
//! The registry, fetch and worktree locks guard one clone's git state:
//! they are kernel file locks in `<common dir>/ff/locks` whatever the
//! configured backend, which holds the others. An issue id's segment is
//! the id with each `/` written `+` ([`IssueId::segment`]), so
//! `feature/login` has one lock, not a node and a leaf beneath it.
//!
//! Before lock hierarchies an issue lock was `ff-<repo key>-issue-<issue>`;
//! [`purpose`] still reads it, so a holder from an older version shows
//! what it holds.
//!
//! ```
//! use ff_worktree::lock_names::{LockPurpose, purpose};
//!
//! assert_eq!(
//!     purpose("ff-3f2a9c/issue-123"),
//!     LockPurpose::Issue { repository: "3f2a9c".into(), issue: "123".into() }
//! );
//! assert_eq!(purpose("deploy"), LockPurpose::User);
//! ```

use ff_traits::{LockInfo, LockName};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::issue::IssueId;
use crate::{Error, Result};

/// Every prefix the manager's names start with.
const PREFIX: &str = "ff-";
/// Between a repository's node and an issue id.
const ISSUE_SEGMENT: &str = "/issue-";
/// Between the common directory's hash and an issue id, in a worktree's
/// local lock.
const WORKTREE_SEGMENT: &str = "-worktree-";
/// Hex digits of the common directory's hash in the registry and fetch names.
const COMMON_HASH_LEN: usize = 16;

/// The locks of one repository, as the manager names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryLocks {
    node: LockName,
    registry: LockName,
    fetch: LockName,
    /// The lock one pool fill of the clone holds.
    pool: LockName,
    /// `ff-<common dir hash>-worktree-`, before an issue id.
    worktree_prefix: String,
}

impl RepositoryLocks {
    /// The names for the repository keyed `repo_key` (its namespace, or a
    /// hash of its location), whose git common directory hashes to
    /// `common_hash` (16 hex digits).
    ///
    /// # Errors
    /// [`ff_traits::Error::InvalidInput`] when `repo_key` cannot name a node
    /// of a lock tree (an empty, `.` or `..` part, too deep, or characters
    /// a lock name refuses).
    pub fn new(repo_key: &str, common_hash: &str) -> Result<Self> {
        let node = LockName::new(format!("{PREFIX}{repo_key}"))
            .and_then(|name| ff_hierarchy::path(&name).map(|_| name))
            .map_err(|e| {
                Error::invalid_input(
                    "namespace",
                    format!(
                        "{repo_key:?} cannot name the repository's locks ({e}); use letters, \
                         digits, '-', '_' and '.', with '/' only between two non-empty parts"
                    ),
                )
            })?;
        Ok(Self {
            node,
            registry: LockName::new(format!("{PREFIX}{common_hash}-registry"))?,
            fetch: LockName::new(format!("{PREFIX}{common_hash}-fetch"))?,
            pool: LockName::new(format!("{PREFIX}{common_hash}-pool"))?,
            worktree_prefix: format!("{PREFIX}{common_hash}{WORKTREE_SEGMENT}"),
        })
    }

    /// The repository's node: every issue lock lies beneath it.
    #[must_use]
    pub fn node(&self) -> &LockName {
        &self.node
    }

    /// The lock of `issue`, beneath the node.
    ///
    /// # Errors
    /// [`ff_traits::Error::InvalidInput`] when the whole name is too long.
    pub fn issue(&self, issue: &IssueId) -> Result<LockName> {
        Ok(LockName::new(format!(
            "{}{ISSUE_SEGMENT}{}",
            self.node,
            issue.segment()
        ))?)
    }

    /// The lock around `git worktree add/remove` and `branch -D`.
    #[must_use]
    pub fn registry(&self) -> &LockName {
        &self.registry
    }

    /// The lock around a sync's `git fetch`.
    #[must_use]
    pub fn fetch(&self) -> &LockName {
        &self.fetch
    }

    /// The lock a fill of the clone's warm pool holds (and `recover`, to
    /// settle the pool), so one fill runs at a time.
    #[must_use]
    pub fn pool(&self) -> &LockName {
        &self.pool
    }

    /// The local lock of `issue`'s worktree in this clone, taken with the
    /// issue's lock.
    ///
    /// # Errors
    /// [`ff_traits::Error::InvalidInput`] when the whole name is too long.
    pub fn worktree(&self, issue: &IssueId) -> Result<LockName> {
        Ok(LockName::new(format!(
            "{}{}",
            self.worktree_prefix,
            issue.segment()
        ))?)
    }

    /// Whether `name` is one of this repository's locks: its node, a lock
    /// beneath it, its registry, fetch, pool or worktree locks.
    #[must_use]
    pub fn owns(&self, name: &str) -> bool {
        name == self.registry.as_str()
            || name == self.pool.as_str()
            || name == self.fetch.as_str()
            || name.starts_with(&self.worktree_prefix)
            || name == self.node.as_str()
            || name
                .strip_prefix(self.node.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// What a lock is for, read from its name alone.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockPurpose {
    /// A repository's node (`ff-<repo key>`).
    Repository {
        /// The repository's key.
        repository: String,
    },
    /// An issue's lock (`ff-<repo key>/issue-<issue>`, or the older
    /// `ff-<repo key>-issue-<issue>`).
    Issue {
        /// The repository's key.
        repository: String,
        /// The issue id.
        issue: String,
    },
    /// A lock beneath a repository's node other than an issue's.
    Beneath {
        /// The repository's key.
        repository: String,
    },
    /// The lock around `git worktree add/remove` of one common directory.
    Registry,
    /// The lock around `git fetch` of one common directory.
    Fetch,
    /// The lock a fill of one common directory's warm pool holds.
    Pool,
    /// The local lock of one issue's worktree in one clone, taken with the
    /// issue's lock.
    Worktree {
        /// The issue id.
        issue: String,
    },
    /// A lock of the user's (`ff lock NAME`), or of another program.
    User,
}

impl LockPurpose {
    /// The issue, for an issue's lock.
    #[must_use]
    pub fn issue(&self) -> Option<&str> {
        match self {
            Self::Issue { issue, .. } | Self::Worktree { issue } => Some(issue),
            _ => None,
        }
    }
}

/// What the lock named `name` is for, from its shape (see the module's
/// table); [`LockPurpose::User`] for any name the manager does not make.
#[must_use]
pub fn purpose(name: &str) -> LockPurpose {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return LockPurpose::User;
    };
    if let Some((hash, what)) = rest.split_once('-')
        && hash.len() == COMMON_HASH_LEN
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        match what {
            "registry" => return LockPurpose::Registry,
            "fetch" => return LockPurpose::Fetch,
            "pool" => return LockPurpose::Pool,
            _ => {}
        }
        if let Some(issue) = what.strip_prefix("worktree-") {
            return LockPurpose::Worktree {
                issue: unsegment(issue),
            };
        }
    }
    if let Some((repository, issue)) = rest.rsplit_once(ISSUE_SEGMENT) {
        return LockPurpose::Issue {
            repository: repository.to_owned(),
            issue: unsegment(issue),
        };
    }
    if let Some((repository, _)) = rest.split_once('/') {
        return LockPurpose::Beneath {
            repository: repository.to_owned(),
        };
    }
    // The name of an issue lock before lock hierarchies.
    if let Some((repository, issue)) = rest.split_once("-issue-") {
        return LockPurpose::Issue {
            repository: repository.to_owned(),
            issue: issue.to_owned(),
        };
    }
    LockPurpose::Repository {
        repository: rest.to_owned(),
    }
}

/// The issue id a lock name's segment stands for (`a+b` is `a/b`).
fn unsegment(segment: &str) -> String {
    IssueId::from_segment(segment).map_or_else(|_| segment.to_owned(), |i| i.as_str().to_owned())
}

/// What the manager writes into a holder's
/// [`metadata`](ff_traits::LockInfo::metadata): which repository (its top
/// level directory) and which issue a lock is for, so a person reading
/// `ff locks` sees it beside a name made of hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HolderMetadata {
    /// The repository's top-level directory.
    #[serde(default)]
    pub repository: Option<String>,
    /// The issue, for an issue's lock.
    #[serde(default)]
    pub issue: Option<String>,
}

impl HolderMetadata {
    /// Metadata for a lock of `repository`, for `issue` if given.
    #[must_use]
    pub fn new(repository: impl Into<String>, issue: Option<&IssueId>) -> Self {
        Self {
            repository: Some(repository.into()),
            issue: issue.map(|i| i.as_str().to_owned()),
        }
    }

    /// What `holder` says of itself: its fields that are strings, nothing
    /// for a holder that is not the manager's (any other metadata).
    #[must_use]
    pub fn of(holder: &LockInfo) -> Self {
        let field = |k: &str| {
            holder
                .metadata
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Self {
            repository: field("repository"),
            issue: field("issue"),
        }
    }

    /// As the holder's metadata.
    #[must_use]
    pub fn to_value(&self) -> Value {
        serde_json::json!({"repository": self.repository, "issue": self.issue})
    }
}

/// What a lock is for, as `ff locks` shows it: the issue and repository
/// its holder names, else the issue its name has.
#[must_use]
pub fn described(name: &str, holder: Option<&LockInfo>) -> (Option<String>, Option<String>) {
    let meta = holder.map(HolderMetadata::of).unwrap_or_default();
    let issue = meta
        .issue
        .or_else(|| purpose(name).issue().map(str::to_owned));
    (issue, meta.repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_the_manager_builds_reads_back() {
        let locks = RepositoryLocks::new("team/app", "0123456789abcdef").expect("names");
        let issue = IssueId::parse("PROJ-7").expect("issue");
        let issue_lock = locks.issue(&issue).expect("issue lock");
        assert_eq!(
            purpose(issue_lock.as_str()),
            LockPurpose::Issue {
                repository: "team/app".into(),
                issue: "PROJ-7".into()
            }
        );
        assert_eq!(purpose(locks.registry().as_str()), LockPurpose::Registry);
        assert_eq!(purpose(locks.fetch().as_str()), LockPurpose::Fetch);
        let worktree = locks.worktree(&issue).expect("worktree lock");
        assert_eq!(
            purpose(worktree.as_str()),
            LockPurpose::Worktree {
                issue: "PROJ-7".into()
            }
        );
        assert!(locks.owns(worktree.as_str()));
        assert!(!locks.owns("ff-fedcba9876543210-worktree-PROJ-7"));
        assert_eq!(
            purpose(locks.node().as_str()),
            LockPurpose::Beneath {
                repository: "team".into()
            },
            "a namespace with '/' is itself a path"
        );
        assert!(locks.owns(issue_lock.as_str()));
        assert!(locks.owns(locks.registry().as_str()));
        assert!(!locks.owns("ff-team/apple"));
        assert!(!locks.owns("deploy"));
    }

    #[test]
    fn older_and_foreign_names() {
        assert_eq!(
            purpose("ff-3f2a-issue-9"),
            LockPurpose::Issue {
                repository: "3f2a".into(),
                issue: "9".into()
            }
        );
        assert_eq!(
            purpose("ff-3f2a"),
            LockPurpose::Repository {
                repository: "3f2a".into()
            }
        );
        // Not 16 hex digits: a repository keyed "feed-registry" would read so.
        assert_eq!(
            purpose("ff-feed-registry"),
            LockPurpose::Repository {
                repository: "feed-registry".into()
            }
        );
        assert_eq!(purpose("deploy/prod"), LockPurpose::User);
    }

    #[test]
    fn a_holder_names_its_issue_before_the_name_does() {
        let mut holder = LockInfo::for_current_process(
            "ff-x/issue-1",
            ff_traits::FencingToken(1),
            &ff_traits::LockOptions::default(),
            ff_traits::Timestamp::now(),
        );
        holder.metadata =
            HolderMetadata::new("/repo", Some(&IssueId::parse("2").expect("id"))).to_value();
        assert_eq!(
            described("ff-x/issue-1", Some(&holder)),
            (Some("2".into()), Some("/repo".into()))
        );
        assert_eq!(described("ff-x/issue-1", None), (Some("1".into()), None));
        assert_eq!(
            described("ff-x/issue-feature+login", None),
            (Some("feature/login".into()), None)
        );
        assert_eq!(described("deploy", None), (None, None));
    }
}
