-- The first schema: installations, tickets, their links to Sentry issues,
-- comments, and the inbox of webhook deliveries.
-- Times are Unix milliseconds in a bigint, in both dialects.

-- One installation of the app in one Sentry organization. Rows are never
-- deleted: an uninstall purges the tokens and marks the row, so the tickets
-- that were made under it keep their organization.
create table installation (
    uuid              text primary key,
    org_slug          text not null,
    org_id            bigint,
    app_slug          text,
    status            text not null default 'pending',
    -- Encrypted with a key derived from ISSUEBRIDGE_SECRET_KEY, never plain.
    access_token      blob,
    refresh_token     blob,
    token_expires_at  bigint,
    created_at        bigint not null,
    updated_at        bigint not null
);
create index installation_org_slug on installation (org_slug);

create table ticket (
    id                integer primary key autoincrement,
    installation_uuid text not null references installation (uuid),
    title             text not null,
    description       text not null default '',
    status            text not null default 'todo'
                      check (status in ('todo', 'in_progress', 'done', 'wont_do')),
    assignee_email    text,
    created_at        bigint not null,
    updated_at        bigint not null
);
create index ticket_recent on ticket (installation_uuid, updated_at desc);
create index ticket_updated on ticket (updated_at desc, id desc);

-- A Sentry issue belongs to at most one ticket per installation; a ticket may
-- gather several issues.
create table ticket_link (
    installation_uuid text not null,
    sentry_issue_id   text not null,
    ticket_id         bigint not null references ticket (id) on delete cascade,
    short_id          text,
    title             text,
    web_url           text,
    project_slug      text,
    created_at        bigint not null,
    primary key (installation_uuid, sentry_issue_id)
);
create index ticket_link_ticket on ticket_link (ticket_id);

create table comment (
    id                integer primary key autoincrement,
    ticket_id         bigint not null references ticket (id) on delete cascade,
    -- Set when the comment came from Sentry or was posted there, so echoes of
    -- our own comments are recognised.
    sentry_comment_id text,
    origin            text not null check (origin in ('sentry', 'console')),
    author            text,
    body              text not null,
    created_at        bigint not null,
    updated_at        bigint not null,
    deleted_at        bigint,
    unique (ticket_id, sentry_comment_id)
);

-- Every signed delivery, stored before it is acknowledged.
-- installation_uuid is not a foreign key on purpose: deliveries for an
-- installation we do not know yet are kept, never refused.
create table delivery (
    id                integer primary key autoincrement,
    received_at       bigint not null,
    source            text not null check (source in ('webhook', 'service_hook')),
    request_id        text,
    resource          text not null,
    action            text,
    installation_uuid text,
    dedupe_key        text not null unique,
    headers           text not null,
    body              blob not null,
    state             text not null default 'pending',
    attempts          bigint not null default 0,
    next_attempt_at   bigint,
    last_error        text,
    processed_at      bigint
);
create index delivery_recent on delivery (received_at desc, id desc);
create index delivery_due on delivery (state, next_attempt_at);
