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

use ff_traits::{Result, validate_lock_name};
use sha2::{Digest, Sha256};

const MAX_PLAIN_LEN: usize = 100;
const READABLE_PREFIX_LEN: usize = 40;

/// The file stem for lock `name` (validated first).
pub(crate) fn file_stem(name: &str) -> Result<String> {
    validate_lock_name(name)?;
    if is_plain(name) {
        return Ok(name.to_owned());
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
    Ok(format!(
        "~{readable}.{}",
        ff_traits::hex_lower(&digest[..8])
    ))
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

    #[test]
    fn plain_names_stay_readable() {
        assert_eq!(file_stem("issue-123").expect("stem"), "issue-123");
        assert_eq!(file_stem("repo.git_main").expect("stem"), "repo.git_main");
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
            let stem = file_stem(name).expect("stem");
            assert!(stem.starts_with('~'), "{name} -> {stem}");
            assert!(
                !stem.contains('/') && !stem.contains('\\') && !stem.contains(".."),
                "{stem}"
            );
            assert!(stem.len() <= 1 + READABLE_PREFIX_LEN + 1 + 16);
        }
        assert_ne!(
            file_stem("a/b").expect("stem"),
            file_stem("a_b").expect("stem")
        );
        assert_ne!(
            file_stem("a/b").expect("stem"),
            file_stem("a\\b").expect("stem")
        );
    }

    #[test]
    fn invalid_names_are_rejected() {
        assert!(file_stem("").is_err());
        assert!(file_stem("nul\0").is_err());
        assert!(file_stem(&"z".repeat(1000)).is_err());
    }
}
