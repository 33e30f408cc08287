//! Teams of an installation, their members, and the numbers their tickets
//! take.

use std::collections::BTreeMap;

use super::conn::{on_conn, Conn};
use super::{on_pool, Store, StoreError};
use crate::domain::team::{
    member_email, team_name, InvalidTeam, Team, TeamChange, TeamKey, TicketKey, DEFAULT_TEAM_KEY, DEFAULT_TEAM_NAME,
};
use crate::domain::time::now_ms;

/// Where a new ticket goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamChoice {
    /// The installation's default team, made on first use.
    Default,
    /// A team of the installation, by id; another installation's is refused.
    Team(i64),
    /// A team of the installation, by key (what Sentry's forms send).
    Key(TeamKey),
}

/// Why a team write was refused; the message is safe to show.
#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("no such team")]
    NotFound,
    #[error("the key {0} is taken by another team of this installation")]
    KeyTaken(TeamKey),
    /// A key, name or email as typed that does not check.
    #[error(transparent)]
    Invalid(#[from] InvalidTeam),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The team a new ticket goes to, without taking a number: the ticket is
/// numbered when its transaction ends ([`super::ApplyTx::number_new_tickets`]).
/// The default team is made on first use.
pub(crate) async fn team_for_ticket(
    mut conn: Conn<'_>,
    installation: &str,
    team: &TeamChoice,
) -> Result<(i64, TeamKey), TeamError> {
    let (team_id, team_key) = match team {
        TeamChoice::Default => (None, None),
        TeamChoice::Team(id) => (Some(*id), None),
        TeamChoice::Key(key) => (None, Some(key.as_str())),
    };
    // A second pass only when the default team has yet to be made.
    for _ in 0..2 {
        let sql = "select id, key from team
                   where installation_uuid = $1
                     and case when $2 is not null then id = $2 when $3 is not null then key = $3 else is_default end";
        let found = on_conn!(&mut conn, |c| sqlx::query_as::<_, (i64, String)>(sql)
            .bind(installation)
            .bind(team_id)
            .bind(team_key)
            .fetch_optional(&mut **c)
            .await)
        .map_err(StoreError::from)?;
        if let Some((id, key)) = found {
            let team = TeamKey::parse(&key).map_err(|e| StoreError::Corrupt(format!("team {id}: {e}")))?;
            return Ok((id, team));
        }
        if *team != TeamChoice::Default {
            return Err(TeamError::NotFound);
        }
        make_default_team(&mut conn, installation).await?;
    }
    Err(StoreError::Corrupt(format!("installation {installation} has no default team")).into())
}

/// Takes the next number of a team for a ticket, in the ticket's own
/// transaction: the `update … returning` holds the team's row until the
/// transaction ends, so two tickets can never take the same number, and a
/// rolled-back ticket gives its number back. For a ticket that changes
/// team; new tickets are numbered as their transaction ends.
pub(crate) async fn take_ticket_number(
    mut conn: Conn<'_>,
    installation: &str,
    team: &TeamChoice,
) -> Result<(i64, TicketKey), TeamError> {
    let (team_id, team) = team_for_ticket(conn.reborrow(), installation, team).await?;
    let number = take_numbers(conn, team_id, 1).await?;
    Ok((team_id, TicketKey { team, number }))
}

/// Takes `count` numbers of a team; returns the first. The team's row
/// stays locked until the transaction ends.
pub(crate) async fn take_numbers(mut conn: Conn<'_>, team_id: i64, count: i64) -> Result<i64, StoreError> {
    let sql = "update team set next_number = next_number + $2 where id = $1 returning next_number - $2";
    on_conn!(&mut conn, |c| sqlx::query_scalar::<_, i64>(sql).bind(team_id).bind(count).fetch_optional(&mut **c).await)?
        .ok_or_else(|| StoreError::Corrupt(format!("team {team_id} of a ticket is gone")))
}

/// The default team of an installation that has none yet. Its key is `IB`
/// unless a team has taken it, then `IB2`, `IB3`…
async fn make_default_team(conn: &mut Conn<'_>, installation: &str) -> Result<(), StoreError> {
    let now = now_ms();
    for suffix in ["".to_string(), "2".into(), "3".into()] {
        let sql = "insert into team (installation_uuid, key, name, is_default, next_number, created_at, updated_at)
                   values ($1, $2, $3, true, 1, $4, $4)
                   on conflict do nothing";
        let made = on_conn!(conn, |c| sqlx::query(sql)
            .bind(installation)
            .bind(format!("{DEFAULT_TEAM_KEY}{suffix}"))
            .bind(DEFAULT_TEAM_NAME)
            .bind(now)
            .execute(&mut **c)
            .await
            .map(|done| done.rows_affected()))?;
        let has_default = on_conn!(conn, |c| sqlx::query_scalar::<_, i64>(
            "select count(*) from team where installation_uuid = $1 and is_default"
        )
        .bind(installation)
        .fetch_one(&mut **c)
        .await)?;
        if made == 1 || has_default > 0 {
            return Ok(());
        }
    }
    Err(StoreError::Corrupt(format!("cannot make a default team for {installation}")))
}

#[derive(sqlx::FromRow)]
struct TeamRow {
    id: i64,
    key: String,
    name: String,
    is_default: bool,
}

impl Store {
    /// An installation's teams, the default first, each with its members.
    pub async fn teams(&self, installation: &str) -> Result<Vec<Team>, StoreError> {
        let sql = "select id, key, name, is_default from team where installation_uuid = $1
                   order by is_default desc, key";
        let rows = on_pool!(self, |pool| sqlx::query_as::<_, TeamRow>(sql).bind(installation).fetch_all(pool).await)?;
        let members_sql = "select m.team_id, m.email from team_member m join team t on t.id = m.team_id
                           where t.installation_uuid = $1 order by m.email";
        let members = on_pool!(self, |pool| sqlx::query_as::<_, (i64, String)>(members_sql)
            .bind(installation)
            .fetch_all(pool)
            .await)?;
        let mut by_team: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for (team, email) in members {
            by_team.entry(team).or_default().push(email);
        }
        rows.into_iter()
            .map(|row| {
                let key = TeamKey::parse(&row.key).map_err(|e| StoreError::Corrupt(format!("team {}: {e}", row.id)))?;
                let members = by_team.remove(&row.id).unwrap_or_default();
                Ok(Team { id: row.id, key, name: row.name, is_default: row.is_default, members })
            })
            .collect()
    }

    /// One team of an installation, by id; `None` for another installation's.
    pub async fn team(&self, installation: &str, team: i64) -> Result<Option<Team>, StoreError> {
        Ok(self.teams(installation).await?.into_iter().find(|t| t.id == team))
    }

    /// One team of an installation, by key, with its members.
    pub async fn team_by_key(&self, installation: &str, key: &TeamKey) -> Result<Option<Team>, StoreError> {
        let sql = "select id, key, name, is_default from team where installation_uuid = $1 and key = $2";
        let row = on_pool!(self, |pool| sqlx::query_as::<_, TeamRow>(sql)
            .bind(installation)
            .bind(key.as_str())
            .fetch_optional(pool)
            .await)?;
        let Some(row) = row else { return Ok(None) };
        let members_sql = "select email from team_member where team_id = $1 order by email";
        let members =
            on_pool!(self, |pool| sqlx::query_scalar::<_, String>(members_sql).bind(row.id).fetch_all(pool).await)?;
        Ok(Some(Team { id: row.id, key: key.clone(), name: row.name, is_default: row.is_default, members }))
    }

    /// An installation's teams, its default team made first if it has none:
    /// a read, and a write only the first time (selects ask on every form).
    pub async fn teams_with_default(&self, installation: &str) -> Result<Vec<Team>, StoreError> {
        let teams = self.teams(installation).await?;
        if teams.iter().any(|t| t.is_default) {
            return Ok(teams);
        }
        self.ensure_default_team(installation).await?;
        self.teams(installation).await
    }

    /// Applies a change asked for by the console or the command line, its
    /// keys, names and emails checked; says what was done, for the audit log.
    pub async fn change_team(&self, installation: &str, change: &TeamChange) -> Result<String, TeamError> {
        let team_id = |key: &str| {
            let key = TeamKey::parse(key);
            async move {
                let key = key?;
                let team = self.team_by_key(installation, &key).await?.ok_or(TeamError::NotFound)?;
                Ok::<_, TeamError>((team.id, key))
            }
        };
        Ok(match change {
            TeamChange::Add { key, name } => {
                let key = TeamKey::parse(key)?;
                self.create_team(installation, &key, &team_name(name)?).await?;
                format!("made team {key}")
            }
            TeamChange::Rename { key, name } => {
                let (id, key) = team_id(key).await?;
                let name = team_name(name)?;
                self.rename_team(installation, id, &name).await?;
                format!("renamed team {key} to {name}")
            }
            TeamChange::AddMember { key, email } => {
                let (id, key) = team_id(key).await?;
                let email = member_email(email)?;
                self.add_team_member(installation, id, &email).await?;
                format!("added {email} to team {key}")
            }
            TeamChange::RemoveMember { key, email } => {
                let (id, key) = team_id(key).await?;
                let email = member_email(email)?;
                self.remove_team_member(installation, id, &email).await?;
                format!("removed {email} from team {key}")
            }
        })
    }

    /// Makes sure the installation has its default team (the worker would
    /// make it with the first ticket; the console shows it from the start).
    pub async fn ensure_default_team(&self, installation: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        make_default_team(&mut self.acquire().await?.conn(), installation).await
    }

    pub async fn create_team(&self, installation: &str, key: &TeamKey, name: &str) -> Result<i64, TeamError> {
        self.ensure_default_team(installation).await?;
        let _turn = self.write_turn().await;
        let sql = "insert into team (installation_uuid, key, name, is_default, next_number, created_at, updated_at)
                   values ($1, $2, $3, false, 1, $4, $4) returning id";
        let made = on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql)
            .bind(installation)
            .bind(key.as_str())
            .bind(name)
            .bind(now_ms())
            .fetch_one(pool)
            .await);
        match made.map_err(StoreError::from) {
            Ok(id) => Ok(id),
            Err(e) if e.is_unique_violation() => Err(TeamError::KeyTaken(key.clone())),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn rename_team(&self, installation: &str, team: i64, name: &str) -> Result<(), TeamError> {
        let _turn = self.write_turn().await;
        let sql = "update team set name = $3, updated_at = $4 where installation_uuid = $1 and id = $2";
        let changed = on_pool!(self, |pool| sqlx::query(sql)
            .bind(installation)
            .bind(team)
            .bind(name)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map_err(StoreError::from)?;
        if changed == 0 {
            return Err(TeamError::NotFound);
        }
        Ok(())
    }

    /// Adds a member (already normalised by `domain::team::member_email`);
    /// adding one twice changes nothing.
    pub async fn add_team_member(&self, installation: &str, team: i64, email: &str) -> Result<(), TeamError> {
        let _turn = self.write_turn().await;
        let sql = "insert into team_member (team_id, email, created_at)
                   select id, $3, $4 from team where installation_uuid = $1 and id = $2
                   on conflict do nothing";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(installation)
            .bind(team)
            .bind(email)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(StoreError::from)?;
        self.team(installation, team).await?.map(|_| ()).ok_or(TeamError::NotFound)
    }

    pub async fn remove_team_member(&self, installation: &str, team: i64, email: &str) -> Result<(), TeamError> {
        let _turn = self.write_turn().await;
        let sql = "delete from team_member where email = $3
                   and team_id = (select id from team where installation_uuid = $1 and id = $2)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(installation)
            .bind(team)
            .bind(email)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(StoreError::from)?;
        self.team(installation, team).await?.map(|_| ()).ok_or(TeamError::NotFound)
    }
}
