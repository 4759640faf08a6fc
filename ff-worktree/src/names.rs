//! The names a worktree goes by, made and read back in one place.
//!
//! One issue's worktree has an id, which is also its directory's name
//! under the base path, and a branch:
//!
//! | issue | id and directory | branch (`branch_template = "ff/{issue}"`) |
//! |---|---|---|
//! | `PROJ-123` | `PROJ-123` | `ff/PROJ-123` |
//! | `feature/login` | `feature+login` | `ff/feature/login` |
//! | `PROJ-123`, when `PROJ-123` or `ff/PROJ-123` is taken | `PROJ-123@2` | `ff/PROJ-123@2` |
//!
//! * **Stable and readable**: an issue's worktree has the same names each
//!   time it is made, unless something (a directory ff did not make, a
//!   branch an earlier worktree left with work on it) already has them;
//!   then the next free `@N` is taken. A create never takes over an
//!   existing directory or branch.
//! * **Reversible**: `/` in an issue id becomes `+` in its directory name
//!   and its lock-name segment (neither `+` nor `@` can be in an issue id),
//!   so every name maps back to exactly one issue ([`IssueId::segment`],
//!   [`IssueId::from_segment`]). Branches keep the `/`: git nests them, so
//!   issue ids of which one is a prefix of the other at a `/`
//!   (`feature` and `feature/login`) cannot both have a worktree; the
//!   second is refused, naming the first.
//! * **Checked both ways**: records, rollback data and git's listings are
//!   only acted on when their names are exactly what one naming function
//!   rebuilds from the id; the trust checks use it, so nothing a record
//!   names can steer a removal elsewhere.
//! * **Earlier releases**: worktrees made before these names
//!   (`wt-<issue>-<time>-<random>` on branch `ff-<issue>-<time>-<random>`)
//!   are still recognised and managed until cleaned up; an issue id of
//!   that shape is refused so the two never meet.
//!
//! ```
//! use ff_worktree::{BranchTemplate, IssueId};
//!
//! let issue = IssueId::parse("feature/login")?;
//! assert_eq!(issue.segment(), "feature+login");
//! assert_eq!(IssueId::from_segment("feature+login")?, issue);
//! let template = BranchTemplate::parse("agent/{issue}")?;
//! assert_eq!(template.branch(&issue), "agent/feature/login");
//! # Ok::<(), ff_traits::Error>(())
//! ```

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::issue::IssueId;
use ff_traits::Error;

/// The branch template used when none is configured.
pub const DEFAULT_BRANCH_TEMPLATE: &str = "ff/{issue}";

/// What stands for the issue id in a branch template.
const PLACEHOLDER: &str = "{issue}";

/// Between an issue's segment and the attempt number in a taken name's
/// successor (`PROJ-1@2`).
const ATTEMPT: char = '@';

/// How branch names are made from issue ids: fixed text, `{issue}` once,
/// optional fixed text after it.
///
/// The text before `{issue}` must be non-empty, start with a letter and
/// end in `/`, `-`, `_` or `.`, so no template can name `main`, `HEAD` or
/// any other branch of one word; both fixed parts use only
/// `A-Z a-z 0-9 / - _ .`, with no `..`, `//`, `@` or `+`, and a branch
/// made from them is always a valid git ref.
///
/// ```
/// use ff_worktree::BranchTemplate;
///
/// assert_eq!(BranchTemplate::default().as_str(), "ff/{issue}");
/// assert!(BranchTemplate::parse("agent/{issue}").is_ok());
/// assert!(BranchTemplate::parse("{issue}").is_err());
/// assert!(BranchTemplate::parse("main").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchTemplate {
    prefix: String,
    suffix: String,
}

impl Default for BranchTemplate {
    fn default() -> Self {
        Self {
            prefix: "ff/".into(),
            suffix: String::new(),
        }
    }
}

impl BranchTemplate {
    /// Checks `template`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the rule `template` breaks.
    pub fn parse(template: &str) -> Result<Self, Error> {
        let refuse = |why: &str| {
            Error::invalid_input(
                "branch_template",
                format!(
                    "{:?} {why}; write fixed text, then {{issue}}, e.g. \"agent/{{issue}}\" (the \
                     text before {{issue}} starts with a letter and ends in '/', '-', '_' or '.'; \
                     only A-Z a-z 0-9 / - _ . around it)",
                    template.escape_debug().to_string()
                ),
            )
        };
        let Some((prefix, suffix)) = template.split_once(PLACEHOLDER) else {
            return Err(refuse("does not contain {issue}"));
        };
        if suffix.contains(PLACEHOLDER) {
            return Err(refuse("contains {issue} more than once"));
        }
        if !prefix.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(refuse("does not start with a letter"));
        }
        if !prefix.ends_with(['/', '-', '_', '.']) {
            return Err(refuse("has no '/', '-', '_' or '.' right before {issue}"));
        }
        for part in [prefix, suffix] {
            if let Some(c) = part
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.')))
            {
                return Err(refuse(&format!("contains {c:?}")));
            }
            if part.contains("..") || part.contains("//") || part.contains("/.") {
                return Err(refuse("contains '..', '//' or '/.'"));
            }
        }
        if suffix.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(refuse("has a letter or digit right after {issue}"));
        }
        if suffix.ends_with(['/', '.']) || suffix.ends_with(".lock") {
            return Err(refuse("ends in '/', '.' or '.lock'"));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        })
    }

    /// The template as written.
    #[must_use]
    pub fn as_str(&self) -> String {
        format!("{}{PLACEHOLDER}{}", self.prefix, self.suffix)
    }

    /// The branch of `issue`'s worktree.
    #[must_use]
    pub fn branch(&self, issue: &IssueId) -> String {
        self.branch_of(issue.as_str())
    }

    fn branch_of(&self, middle: &str) -> String {
        format!("{}{middle}{}", self.prefix, self.suffix)
    }

    /// The fixed text every branch starts with.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl fmt::Display for BranchTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// The names one create attempt uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Plan {
    pub(crate) id: String,
    pub(crate) path: PathBuf,
    pub(crate) branch: String,
    /// The clone the attempt ran in (see [`crate::Worktree::location`]).
    #[serde(default)]
    pub(crate) location: String,
}

impl Plan {
    /// The issue the names are of.
    pub(crate) fn issue(&self) -> Option<String> {
        if let Some((issue, _, _)) = legacy_parts(&self.id) {
            return Some(issue.to_owned());
        }
        let (segment, _) = split_attempt(&self.id)?;
        IssueId::from_segment(segment)
            .ok()
            .map(|i| i.as_str().to_owned())
    }
}

/// Where worktrees go and how their branches are named: the one naming
/// function every create, lookup and check uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    base: PathBuf,
    template: BranchTemplate,
}

impl Names {
    pub(crate) fn new(base: PathBuf, template: BranchTemplate) -> Self {
        Self { base, template }
    }

    pub(crate) fn template(&self) -> &BranchTemplate {
        &self.template
    }

    /// The names of `issue`'s worktree on its `attempt`th free name (1:
    /// the plain one).
    pub(crate) fn plan(&self, issue: &IssueId, attempt: u32, location: &str) -> Plan {
        let (id, middle) = if attempt <= 1 {
            (issue.segment(), issue.as_str().to_owned())
        } else {
            (
                format!("{}{ATTEMPT}{attempt}", issue.segment()),
                format!("{issue}{ATTEMPT}{attempt}"),
            )
        };
        Plan {
            path: self.base.join(&id),
            branch: self.template.branch_of(&middle),
            id,
            location: location.to_owned(),
        }
    }

    /// The plan whose id (a directory name under the base path) is `id`,
    /// if `id` is exactly an id ForgeFlow gives, now or in an earlier
    /// release.
    pub(crate) fn recognise_id(&self, id: &str) -> Option<Plan> {
        if let Some(plan) = self.legacy(id).filter(|p| p.id == id) {
            return Some(plan);
        }
        let (segment, attempt) = split_attempt(id)?;
        let issue = IssueId::from_segment(segment).ok()?;
        Some(self.plan(&issue, attempt, "")).filter(|plan| plan.id == id)
    }

    /// The plan whose branch is `branch`, if `branch` is exactly a branch
    /// ForgeFlow gives (under this template, or of an earlier release).
    pub(crate) fn recognise_branch(&self, branch: &str) -> Option<Plan> {
        if let Some(plan) = self.legacy(branch).filter(|p| p.branch == branch) {
            return Some(plan);
        }
        let middle = branch
            .strip_prefix(self.template.prefix.as_str())?
            .strip_suffix(self.template.suffix.as_str())?;
        let (issue, attempt) = split_attempt(middle)?;
        let issue = IssueId::parse(issue).ok()?;
        Some(self.plan(&issue, attempt, "")).filter(|plan| plan.branch == branch)
    }

    /// The plan an id or a branch names: [`recognise_id`](Self::recognise_id),
    /// else [`recognise_branch`](Self::recognise_branch).
    pub(crate) fn recognise(&self, name: &str) -> Option<Plan> {
        self.recognise_id(name)
            .or_else(|| self.recognise_branch(name))
    }

    /// The plan of an earlier release's id or branch.
    fn legacy(&self, name: &str) -> Option<Plan> {
        let (issue, time, random) = legacy_parts(name)?;
        let suffix = format!("{time}-{random}");
        let id = format!("wt-{issue}-{suffix}");
        Some(Plan {
            path: self.base.join(&id),
            branch: format!("ff-{issue}-{suffix}"),
            id,
            location: String::new(),
        })
    }
}

/// Whether some valid branch template, not necessarily today's, gives
/// `plan`'s issue and attempt the branch `branch` (a worktree made before
/// the template changed).
pub(crate) fn templated_for(branch: &str, plan: &Plan) -> bool {
    let Some(issue) = plan.issue() else {
        return false;
    };
    let middle = match split_attempt(&plan.id) {
        Some((_, 1)) => issue,
        Some((_, n)) => format!("{issue}{ATTEMPT}{n}"),
        None => return false,
    };
    branch.match_indices(middle.as_str()).any(|(at, _)| {
        let (prefix, rest) = branch.split_at(at);
        let suffix = &rest[middle.len()..];
        BranchTemplate::parse(&format!("{prefix}{PLACEHOLDER}{suffix}"))
            .is_ok_and(|t| t.branch_of(&middle) == branch)
    })
}

/// `name` as `<issue or segment>[@N]` with N ≥ 2 in plain decimal.
fn split_attempt(name: &str) -> Option<(&str, u32)> {
    match name.rsplit_once(ATTEMPT) {
        None => Some((name, 1)),
        Some((head, n)) => {
            let attempt: u32 = n.parse().ok()?;
            (attempt >= 2 && n == attempt.to_string()).then_some((head, attempt))
        }
    }
}

/// The issue, time and random parts of a name of an earlier release's
/// shape: `wt-` (directory) or `ff-` (branch), then
/// `<issue>-<base-36 time>-<4 lowercase hex digits>`.
pub(crate) fn legacy_parts(name: &str) -> Option<(&str, &str, &str)> {
    let rest = name
        .strip_prefix("wt-")
        .or_else(|| name.strip_prefix("ff-"))?;
    let (rest, random) = rest.rsplit_once('-')?;
    let (issue, time) = rest.rsplit_once('-')?;
    let shaped = random.len() == 4
        && random
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && !time.is_empty()
        && time
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
    (shaped && !issue.contains('/') && IssueId::parse(issue).is_ok())
        .then_some((issue, time, random))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(template: &str) -> Names {
        Names::new(
            PathBuf::from("/base"),
            BranchTemplate::parse(template).expect(template),
        )
    }

    #[test]
    fn plain_issues_keep_their_id_as_directory_and_branch() {
        let n = names(DEFAULT_BRANCH_TEMPLATE);
        let plan = n.plan(&IssueId::parse("PROJ-123").expect("id"), 1, "");
        assert_eq!(plan.id, "PROJ-123");
        assert_eq!(plan.path, PathBuf::from("/base/PROJ-123"));
        assert_eq!(plan.branch, "ff/PROJ-123");
        assert_eq!(plan.issue().as_deref(), Some("PROJ-123"));
    }

    #[test]
    fn every_name_reads_back_to_its_plan() {
        for template in [
            "ff/{issue}",
            "agent/{issue}",
            "wip-{issue}",
            "t/{issue}-wip",
        ] {
            let n = names(template);
            for issue in ["1", "PROJ-7", "feature/login", "a/b/c", "v1.2", "x_y"] {
                let issue = IssueId::parse(issue).expect("id");
                for attempt in [1, 2, 17] {
                    let plan = n.plan(&issue, attempt, "");
                    assert_eq!(
                        n.recognise_id(&plan.id).as_ref(),
                        Some(&plan),
                        "{template} {plan:?}"
                    );
                    assert_eq!(
                        n.recognise_branch(&plan.branch).as_ref(),
                        Some(&plan),
                        "{template}"
                    );
                    assert_eq!(plan.issue().as_deref(), Some(issue.as_str()));
                }
            }
        }
    }

    #[test]
    fn earlier_releases_names_are_recognised() {
        let n = names(DEFAULT_BRANCH_TEMPLATE);
        let plan = n.recognise_id("wt-123-mx5qglpu-c7e5").expect("legacy id");
        assert_eq!(plan.branch, "ff-123-mx5qglpu-c7e5");
        assert_eq!(plan.path, PathBuf::from("/base/wt-123-mx5qglpu-c7e5"));
        assert_eq!(plan.issue().as_deref(), Some("123"));
        assert_eq!(
            n.recognise_branch("ff-123-mx5qglpu-c7e5"),
            Some(plan.clone())
        );
        assert_eq!(n.recognise_id("ff-123-mx5qglpu-c7e5"), None);
        assert_eq!(n.recognise_branch("wt-123-mx5qglpu-c7e5"), None);
        // Issue ids of that shape are refused, so no new name is one.
        assert!(IssueId::parse("wt-123-mx5qglpu-c7e5").is_err());
        assert!(IssueId::parse("ff-1-a-beef").is_err());
    }

    #[test]
    fn names_that_are_not_ours_are_not_recognised() {
        let n = names("agent/{issue}");
        for id in [
            "a+", "+a", "a++b", "x@", "x@1", "x@02", ".hidden", "a/b", "",
        ] {
            assert_eq!(n.recognise_id(id), None, "{id}");
        }
        for name in [
            "main",
            "agent/",
            "agent/x@1",
            "agent/x@02",
            "agent/x@y",
            "other/1",
            "feature/login",
            "a+",
            "+a",
            "a++b",
            "x@",
            ".hidden",
            "wt-1-x-ABCD",
        ] {
            assert_eq!(n.recognise_branch(name), None, "{name}");
        }
    }

    #[test]
    fn a_branch_of_an_earlier_template_is_told_apart_from_any_other() {
        let n = names("agent/{issue}");
        let plan = n.plan(&IssueId::parse("PROJ-1").expect("id"), 2, "");
        assert!(templated_for("agent/PROJ-1@2", &plan));
        assert!(templated_for("ff/PROJ-1@2", &plan));
        assert!(templated_for("team/x-PROJ-1@2/wip", &plan));
        for other in [
            "PROJ-1@2",
            "main",
            "ff/PROJ-1",
            "ff/PROJ-1@3",
            "ffPROJ-1@2",
            "ff/PROJ-1@2x",
        ] {
            assert!(!templated_for(other, &plan), "{other}");
        }
    }

    #[test]
    fn templates_that_could_name_other_branches_are_refused() {
        for bad in [
            "",
            "main",
            "{issue}",
            "{issue}/x",
            "a{issue}",
            "1/{issue}",
            "-/{issue}",
            "a//{issue}",
            "a/../{issue}",
            "a/{issue}{issue}",
            "a@/{issue}",
            "a+/{issue}",
            "a b/{issue}",
            "a/{issue}x",
            "a/{issue}/",
            "a/{issue}.lock",
            "a/.b/{issue}",
            "ä/{issue}",
        ] {
            let err = BranchTemplate::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("{issue}"), "{bad}: {err}");
        }
        assert_eq!(
            BranchTemplate::parse("team.x/agent-{issue}/wip")
                .expect("ok")
                .as_str(),
            "team.x/agent-{issue}/wip"
        );
    }
}
