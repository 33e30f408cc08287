-- Console login: single-use login links for instance administrators, and
-- the audit log of what people (and the command line) did. Sessions live in
-- tower-sessions' own table, which its store creates.

-- One row per login. A session names its login, and logging out ends the
-- login here: a session record that a request still in flight writes back
-- after the logout then names an ended login, and opens nothing.
create table console_login (
    id          text primary key,
    email       text not null,
    started_at  bigint not null,
    ended_at    bigint
);

-- A link printed by `issuebridge login-link`. Only a hash of the link's
-- secret is kept, so a copy of the database cannot log anyone in.
create table login_link (
    token_hash  text primary key,
    email       text not null,
    created_at  bigint not null,
    expires_at  bigint not null,
    used_at     bigint
);

-- One row per thing done: logins (and failed ones), logouts, settings
-- changes, replays, uninstalls. Written in the same transaction as the
-- change it records. `org_slug` scopes who may read it; a row without one
-- (a login) is read by its actor and by instance administrators.
create table audit_event (
    id                integer primary key autoincrement,
    at                bigint not null,
    actor             text not null,
    action            text not null,
    org_slug          text,
    installation_uuid text,
    detail            text not null default ''
);
create index audit_event_org on audit_event (org_slug, id desc);
create index audit_event_actor on audit_event (actor, id desc);
