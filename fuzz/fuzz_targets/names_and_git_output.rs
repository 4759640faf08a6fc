//! Names that become paths and git output that becomes worktrees: a lock
//! name maps to one plain file name inside the lock directory or is
//! refused; an issue id that is accepted is safe as a path component and a
//! branch name; `git worktree list --porcelain -z` output of any shape
//! parses or is refused, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ff_worktree::git::parse_worktree_list(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(stem) = ff_lock_file::fuzzing::file_stem(text) {
        assert!(!stem.is_empty() && stem.len() <= 200, "{stem:?}");
        assert!(
            stem != "." && stem != ".." && !stem.starts_with('.'),
            "{stem:?}"
        );
        assert!(
            !stem.contains(['/', '\\', '\0', ':']) && !stem.chars().any(char::is_control),
            "{stem:?} is not one plain file name"
        );
    }
    if let Ok(issue) = ff_worktree::IssueId::parse(text) {
        let s = issue.as_str();
        assert!(!s.is_empty() && s.len() <= ff_worktree::MAX_ISSUE_ID_LEN);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
            "{s:?}"
        );
        assert!(!s.contains("..") && !s.starts_with(['.', '-']) && !s.ends_with(".lock"));
    }
});
