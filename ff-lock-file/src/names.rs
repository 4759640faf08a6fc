//! Lock names to file names.
//!
//! A name made only of `[A-Za-z0-9_.-]`, not starting with `.` or `-`,
//! without `..` and at most 100 bytes long is used as it is (`issue-123`
//! becomes `issue-123.lock`). Any other accepted name is mapped to
//! `~<readable part>.<hash>`: the `~` cannot start a name used as it is, so
//! the two forms never collide, and the hash (64 bits of SHA-256 of the
//! whole name) keeps distinct names apart. No name can reach outside the
//! lock directory: separators, `..` and control characters never appear in
//! a file name.

use ff_traits::LockName;
use sha2::{Digest, Sha256};

const MAX_PLAIN_LEN: usize = 100;
const READABLE_PREFIX_LEN: usize = 40;

/// The file stem for lock `name`.
pub(crate) fn file_stem(name: &LockName) -> String {
    let name = name.as_str();
    if is_plain(name) {
        return name.to_owned();
    }
    let readable: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(READABLE_PREFIX_LEN)
        .collect();
    let digest = Sha256::digest(name.as_bytes());
    format!("~{readable}.{}", ff_traits::hex_lower(&digest[..8]))
}

fn is_plain(name: &str) -> bool {
    name.len() <= MAX_PLAIN_LEN
        && !name.starts_with(['.', '-'])
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stem(name: &str) -> String {
        file_stem(&LockName::new(name).expect("valid name"))
    }

    #[test]
    fn plain_names_stay_readable() {
        assert_eq!(stem("issue-123"), "issue-123");
        assert_eq!(stem("repo.git_main"), "repo.git_main");
    }

    #[test]
    fn hostile_names_are_mapped_inside_the_directory() {
        for name in [
            "../../etc/passwd",
            "a/b",
            "a\\b",
            ".hidden",
            "-rf",
            "x..y",
            "ünï",
            &"y".repeat(200),
        ] {
            let stem = stem(name);
            assert!(stem.starts_with('~'), "{name} -> {stem}");
            assert!(
                !stem.contains('/') && !stem.contains('\\') && !stem.contains(".."),
                "{stem}"
            );
            assert!(stem.len() <= 1 + READABLE_PREFIX_LEN + 1 + 16);
        }
        assert_ne!(stem("a/b"), stem("a_b"));
        assert_ne!(stem("a/b"), stem("a\\b"));
    }
}
