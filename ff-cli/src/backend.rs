//! `--lock` and `--store` (or `FF_LOCK`, `FF_STORE`, `ff.toml`), parsed once
//! into what they name; a bad one is refused (65) before anything opens.

use std::str::FromStr;

use crate::output::Failure;

/// A Redis deployment's URL, its shape checked by ff-redis (the checks its
/// connections make).
#[cfg(feature = "redis")]
pub(crate) type RedisTarget = ff_worktree::backends::redis::RedisUrl;

/// A Redis URL in a build without Redis: kept to say so when it is used
/// (69), as that is what is wrong with it here.
#[cfg(not(feature = "redis"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedisTarget(String);

#[cfg(not(feature = "redis"))]
impl RedisTarget {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A PostgreSQL database's URL, its shape checked by ff-postgres.
#[cfg(feature = "postgres")]
pub(crate) type PostgresTarget = ff_worktree::backends::postgres::PostgresUrl;

/// A PostgreSQL URL in a build without PostgreSQL: kept to say so when it
/// is used (69).
#[cfg(not(feature = "postgres"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PostgresTarget(String);

fn postgres_target(spec: &str) -> Result<Option<PostgresTarget>, Failure> {
    if !(spec.starts_with("postgres://") || spec.starts_with("postgresql://")) {
        return Ok(None);
    }
    #[cfg(feature = "postgres")]
    return spec.parse().map(Some).map_err(Failure::from);
    #[cfg(not(feature = "postgres"))]
    Ok(Some(PostgresTarget(spec.to_owned())))
}

const REDIS_SCHEMES: [&str; 4] = [
    "redis://",
    "rediss://",
    "redis+sentinel://",
    "redis+cluster://",
];

fn redis_target(spec: &str) -> Result<Option<RedisTarget>, Failure> {
    if !REDIS_SCHEMES.iter().any(|s| spec.starts_with(s)) {
        return Ok(None);
    }
    #[cfg(feature = "redis")]
    return spec.parse().map(Some).map_err(Failure::from);
    #[cfg(not(feature = "redis"))]
    Ok(Some(RedisTarget(spec.to_owned())))
}

fn unknown(role: &str, spec: &str) -> Failure {
    Failure::invalid(format!(
        "unknown {role} backend {spec:?}; use file (locks), sqlite or json (stores), or \
         redis://HOST:PORT[/DB] (rediss:// for TLS, redis+sentinel://HOST:PORT[,…]/MASTER for \
         Sentinel, redis+cluster://HOST:PORT[,…] for a cluster), or \
         postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    ))
}

/// Where locks live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LockBackend {
    /// Kernel file locks in the state directory.
    File,
    /// A Redis deployment.
    Redis(RedisTarget),
    /// A PostgreSQL database.
    Postgres(PostgresTarget),
}

impl FromStr for LockBackend {
    type Err = Failure;

    fn from_str(spec: &str) -> Result<Self, Failure> {
        match spec {
            "file" => Ok(Self::File),
            "sqlite" | "json" => Err(Failure::invalid(format!(
                "{spec:?} is a record store, not a lock backend; use --lock file or \
                 redis://HOST:PORT[/DB]"
            ))),
            _ => match postgres_target(spec)? {
                Some(t) => Ok(Self::Postgres(t)),
                None => redis_target(spec)?
                    .map(Self::Redis)
                    .ok_or_else(|| unknown("lock", spec)),
            },
        }
    }
}

/// Where idempotency records live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreBackend {
    /// One SQLite database in the state directory.
    Sqlite,
    /// One JSON file per record in the state directory.
    Json,
    /// A Redis deployment.
    Redis(RedisTarget),
    /// A PostgreSQL database.
    Postgres(PostgresTarget),
}

impl FromStr for StoreBackend {
    type Err = Failure;

    fn from_str(spec: &str) -> Result<Self, Failure> {
        match spec {
            "sqlite" => Ok(Self::Sqlite),
            "json" => Ok(Self::Json),
            "file" => Err(Failure::invalid(
                "\"file\" is a lock backend, not a record store; use --store sqlite, json or \
                 redis://HOST:PORT[/DB]",
            )),
            _ => match postgres_target(spec)? {
                Some(t) => Ok(Self::Postgres(t)),
                None => redis_target(spec)?
                    .map(Self::Redis)
                    .ok_or_else(|| unknown("store", spec)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_takes_its_own_backends() {
        assert_eq!("file".parse::<LockBackend>().ok(), Some(LockBackend::File));
        assert_eq!(
            "json".parse::<StoreBackend>().ok(),
            Some(StoreBackend::Json)
        );
        assert!("sqlite".parse::<LockBackend>().is_err());
        assert!("file".parse::<StoreBackend>().is_err());
        assert!("mysql://x".parse::<StoreBackend>().is_err());
        assert!(matches!(
            "postgres://u@h/db".parse::<StoreBackend>(),
            Ok(StoreBackend::Postgres(_))
        ));
        assert!(matches!(
            "redis://h:1".parse::<LockBackend>(),
            Ok(LockBackend::Redis(_))
        ));
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn a_postgres_url_that_skips_the_tls_check_is_refused() {
        let e = "postgres://u@h/db?sslmode=require"
            .parse::<LockBackend>()
            .expect_err("no check");
        assert_eq!(e.code, crate::output::INVALID_INPUT);
        assert!(
            e.error.message.contains("verify-full"),
            "{}",
            e.error.message
        );
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_malformed_redis_url_is_refused_as_ff_redis_would() {
        let e = "redis://h:port"
            .parse::<LockBackend>()
            .expect_err("malformed");
        assert_eq!(e.code, crate::output::INVALID_INPUT);
        assert!(
            e.error.message.contains("malformed Redis URL"),
            "{}",
            e.error.message
        );
    }
}
