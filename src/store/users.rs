//! The master API's accounts: `users`, `revoked_tokens` and the key/value `state` table
//! (engine.md §3.6, §7.1).
//!
//! The store keeps what the API decides, nothing more: password hashes arrive already
//! computed (the API hashes off the async runtime), and every rule about who may do
//! what lives in the master role. Writes are rare and administrative, so each opens a
//! short-lived connection of its own, as the worker allow-list does; `busy_timeout`
//! serialises them with the event writer.
//!
//! Token revocation has two parts: `tokens_valid_from` (milliseconds) kills every token
//! issued before a password or role change, and `revoked_tokens` kills one token id at
//! logout until the token would have expired anyway.
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::{Error, Reader, Result, Store, sql_micros};

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, user administration included.
    Admin,
    /// Read-only routes.
    Viewer,
}

impl Role {
    /// The stored (and API) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// The role spelled `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// One account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id, the token's `uuid` claim.
    pub uuid: String,
    /// Login name, unique.
    pub username: String,
    /// PHC string of the password hash (argon2id for hashes decnet writes).
    pub password_hash: String,
    /// What the account may do.
    pub role: Role,
    /// The account must change its password before anything else.
    pub must_change_password: bool,
    /// Tokens issued before this instant (ms since the epoch) are no longer valid.
    pub tokens_valid_from_ms: i64,
}

/// What [`Store::seed_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    /// The account did not exist and was created.
    Created,
    /// The account still had to change its password, so its hash was replaced.
    Resynced,
    /// The account exists and its owner has chosen a password: left alone.
    Kept,
}

const USER_COLUMNS: &str =
    "uuid, username, password_hash, role, must_change_password, tokens_valid_from";

fn user_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(User, String)> {
    let role: String = row.get(3)?;
    Ok((
        User {
            uuid: row.get(0)?,
            username: row.get(1)?,
            password_hash: row.get(2)?,
            role: Role::Viewer,
            must_change_password: row.get(4)?,
            tokens_valid_from_ms: row.get(5)?,
        },
        role,
    ))
}

/// Turns a row read by [`user_row`] into a [`User`], refusing unknown roles.
fn typed((mut user, role): (User, String)) -> Result<User> {
    user.role = Role::parse(&role)
        .ok_or_else(|| Error::Corrupt(format!("user {}: unknown role {role:?}", user.uuid)))?;
    Ok(user)
}

fn now_text() -> String {
    sql_micros(OffsetDateTime::now_utc())
}

impl Store {
    /// Adds `user`; `false` (and nothing written) when the username is taken.
    pub fn create_user(&self, user: &User) -> Result<bool> {
        let conn = self.connect(false)?;
        let now = now_text();
        let n = conn.execute(
            "INSERT INTO users (uuid, username, password_hash, role, must_change_password,
                 tokens_valid_from, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
             ON CONFLICT DO NOTHING",
            params![
                user.uuid,
                user.username,
                user.password_hash,
                user.role.as_str(),
                user.must_change_password,
                user.tokens_valid_from_ms,
                now
            ],
        )?;
        Ok(n > 0)
    }

    /// Creates the bootstrap admin `user`, or re-syncs its hash while it has not chosen
    /// its own password yet (engine.md §7.1), in one transaction.
    pub fn seed_admin(&self, user: &User) -> Result<Seeded> {
        let mut conn = self.connect(false)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let existing: Option<bool> = tx
            .query_row(
                "SELECT must_change_password FROM users WHERE username = ?1",
                params![user.username],
                |r| r.get(0),
            )
            .optional()?;
        let outcome = match existing {
            Some(false) => Seeded::Kept,
            Some(true) => {
                tx.execute(
                    "UPDATE users SET password_hash = ?1, updated_at = ?2 WHERE username = ?3",
                    params![user.password_hash, now_text(), user.username],
                )?;
                Seeded::Resynced
            }
            None => {
                let now = now_text();
                tx.execute(
                    "INSERT INTO users (uuid, username, password_hash, role,
                         must_change_password, tokens_valid_from, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                    params![
                        user.uuid,
                        user.username,
                        user.password_hash,
                        user.role.as_str(),
                        user.must_change_password,
                        user.tokens_valid_from_ms,
                        now
                    ],
                )?;
                Seeded::Created
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// Removes the account `uuid`; whether it existed.
    pub fn delete_user(&self, uuid: &str) -> Result<bool> {
        let conn = self.connect(false)?;
        Ok(conn.execute("DELETE FROM users WHERE uuid = ?1", params![uuid])? > 0)
    }

    /// Gives `uuid` the role `role` and invalidates its tokens issued before `now_ms`.
    pub fn set_role(&self, uuid: &str, role: Role, now_ms: i64) -> Result<bool> {
        let conn = self.connect(false)?;
        let n = conn.execute(
            "UPDATE users SET role = ?1, tokens_valid_from = ?2, updated_at = ?3
             WHERE uuid = ?4",
            params![role.as_str(), now_ms, now_text(), uuid],
        )?;
        Ok(n > 0)
    }

    /// Replaces the password hash of `uuid`, sets whether it must be changed, and
    /// invalidates the account's tokens issued before `now_ms`.
    pub fn set_password(
        &self,
        uuid: &str,
        password_hash: &str,
        must_change: bool,
        now_ms: i64,
    ) -> Result<bool> {
        let conn = self.connect(false)?;
        let n = conn.execute(
            "UPDATE users SET password_hash = ?1, must_change_password = ?2,
                 tokens_valid_from = ?3, updated_at = ?4
             WHERE uuid = ?5",
            params![password_hash, must_change, now_ms, now_text(), uuid],
        )?;
        Ok(n > 0)
    }

    /// Revokes token `jti` of `user_uuid` until `expires_at` (seconds since the epoch),
    /// and prunes revocations whose tokens have expired by `now_secs`.
    pub fn revoke_token(
        &self,
        jti: &str,
        user_uuid: &str,
        expires_at: i64,
        now_secs: i64,
    ) -> Result<()> {
        let conn = self.connect(false)?;
        conn.execute(
            "INSERT INTO revoked_tokens (jti, user_uuid, expires_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![jti, user_uuid, expires_at, now_text()],
        )?;
        conn.execute(
            "DELETE FROM revoked_tokens WHERE expires_at < ?1",
            params![now_secs],
        )?;
        Ok(())
    }

    /// Sets `state[key]` to the JSON text `value`.
    pub fn put_state(&self, key: &str, value: &str) -> Result<()> {
        let conn = self.connect(false)?;
        conn.execute(
            "INSERT INTO state (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

impl Reader {
    /// The account `uuid`, if it exists.
    pub fn user_by_uuid(&self, uuid: &str) -> Result<Option<User>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE uuid = ?1"))?;
        stmt.query_row(params![uuid], user_row)
            .optional()?
            .map(typed)
            .transpose()
    }

    /// The account called `username`, if it exists.
    pub fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = ?1"
        ))?;
        stmt.query_row(params![username], user_row)
            .optional()?
            .map(typed)
            .transpose()
    }

    /// Every account, by username.
    pub fn users(&self) -> Result<Vec<User>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY username"
        ))?;
        let rows = stmt.query_map([], user_row)?;
        rows.map(|r| typed(r?)).collect()
    }

    /// Whether token `jti` was revoked (logged out).
    pub fn is_token_revoked(&self, jti: &str) -> Result<bool> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM revoked_tokens WHERE jti = ?1")?;
        Ok(stmt.exists(params![jti])?)
    }

    /// The JSON text of `state[key]`, if set.
    pub fn state(&self, key: &str) -> Result<Option<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT value FROM state WHERE key = ?1")?;
        Ok(stmt.query_row(params![key], |r| r.get(0)).optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Options;

    fn user(uuid: &str, name: &str, must_change: bool) -> User {
        User {
            uuid: uuid.into(),
            username: name.into(),
            password_hash: "h1".into(),
            role: Role::Admin,
            must_change_password: must_change,
            tokens_valid_from_ms: 0,
        }
    }

    #[test]
    fn accounts_round_trip_and_usernames_are_unique() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Corrupt(e.to_string()))?;
        let store = Store::open(dir.path().join("d.db"), Options::default())?;
        assert!(store.create_user(&user("u1", "alice", false))?);
        assert!(!store.create_user(&user("u2", "alice", false))?);
        let reader = store.reader()?;
        assert_eq!(
            reader.user_by_name("alice")?,
            Some(user("u1", "alice", false))
        );
        assert!(store.set_role("u1", Role::Viewer, 42)?);
        let got = reader.user_by_uuid("u1")?.ok_or(Error::WriterClosed)?;
        assert_eq!((got.role, got.tokens_valid_from_ms), (Role::Viewer, 42));
        assert!(store.delete_user("u1")?);
        assert!(!store.delete_user("u1")?);
        assert_eq!(reader.users()?, Vec::new());
        Ok(())
    }

    #[test]
    fn the_seeded_admin_is_resynced_only_until_it_chose_a_password() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Corrupt(e.to_string()))?;
        let store = Store::open(dir.path().join("d.db"), Options::default())?;
        assert_eq!(
            store.seed_admin(&user("a", "admin", true))?,
            Seeded::Created
        );
        let mut again = user("other", "admin", true);
        again.password_hash = "h2".into();
        assert_eq!(store.seed_admin(&again)?, Seeded::Resynced);
        let reader = store.reader()?;
        let got = reader.user_by_name("admin")?.ok_or(Error::WriterClosed)?;
        assert_eq!((got.uuid.as_str(), got.password_hash.as_str()), ("a", "h2"));
        assert!(store.set_password("a", "mine", false, 1)?);
        assert_eq!(store.seed_admin(&again)?, Seeded::Kept);
        let got = reader.user_by_name("admin")?.ok_or(Error::WriterClosed)?;
        assert_eq!(got.password_hash, "mine");
        Ok(())
    }

    #[test]
    fn revocations_are_pruned_after_expiry() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Corrupt(e.to_string()))?;
        let store = Store::open(dir.path().join("d.db"), Options::default())?;
        store.revoke_token("j1", "u", 100, 50)?;
        let reader = store.reader()?;
        assert!(reader.is_token_revoked("j1")?);
        store.revoke_token("j2", "u", 300, 200)?;
        assert!(!reader.is_token_revoked("j1")?);
        assert!(reader.is_token_revoked("j2")?);
        Ok(())
    }
}
