-- Two-way sync: what issuebridge tells Sentry, a ticket's history, and the
-- names a ticket had before it moved team.

-- Every change Sentry should hear about, written in the transaction of the
-- change itself, one row per Sentry issue it concerns. The sender sends
-- each issue's rows in id order, one at a time (docs/sync.md).
create table outbox (
    id                integer primary key autoincrement,
    installation_uuid text not null,
    sentry_issue_id   text not null,
    ticket_id         bigint not null,
    -- status, assignee, comment_created, comment_updated, comment_deleted,
    -- link_external, unlink_external (domain::outbox::OutboxKind).
    kind              text not null,
    -- What to send, as JSON; values the ticket holds are read when sending.
    payload           text not null default '{}',
    -- When the change was made: a newer change of the same field made in
    -- Sentry or here supersedes it.
    change_at         bigint not null,
    -- pending, sent, failed (for good, until someone retries), superseded,
    -- skipped (nothing to send, e.g. no Sentry member with that email).
    state             text not null default 'pending',
    attempts          bigint not null default 0,
    next_attempt_at   bigint not null,
    claimed_until     bigint,
    last_error        text,
    -- What Sentry gave back that later rows need (an external issue's id).
    sentry_ref        text,
    created_at        bigint not null,
    finished_at       bigint
);
-- The sender's question: each issue's oldest pending row.
create index outbox_pending on outbox (installation_uuid, sentry_issue_id, id) where state = 'pending';
create index outbox_due on outbox (next_attempt_at) where state = 'pending';
create index outbox_ticket on outbox (ticket_id, id);
create index outbox_state on outbox (state, id);

-- Every change to a ticket with where it came from: a person (`person`),
-- a Sentry webhook (`sentry`), a rule (`rule`) or the sync itself (`sync`).
create table ticket_event (
    id                integer primary key autoincrement,
    ticket_id         bigint not null references ticket (id) on delete cascade,
    at                bigint not null,
    source            text not null,
    actor             text,
    summary           text not null
);
create index ticket_event_ticket on ticket_event (ticket_id, id);

-- When the assignee last changed, so a late or older change loses.
alter table ticket add column assignee_at bigint;

-- Identifiers a ticket had in another team: old links keep working.
create table ticket_alias (
    installation_uuid text not null,
    identifier        text not null,
    ticket_id         bigint not null references ticket (id) on delete cascade,
    primary key (installation_uuid, identifier)
);

-- The Sentry issue a comment written here was posted to (the ticket's first
-- linked issue when it was written), so its edits and deletion follow it.
alter table comment add column sentry_issue_id text;
