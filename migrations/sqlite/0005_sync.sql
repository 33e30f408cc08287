-- Syncing what Sentry sends into tickets: the Sentry issues an installation
-- has heard of, per-installation settings, keys for effects that must happen
-- once, alert tickets, and every processing attempt of a delivery.

-- Settings as JSON. The defaults live in code (issuebridge::sync), so '{}'
-- means "every default" and new settings never need a migration.
alter table installation add column settings text not null default '{}';

-- Each Sentry issue an installation told us about, linked to a ticket or
-- not. status_at/status_delivery (and the assigned_ pair) record which
-- change was applied last, so a delivery that arrives late loses to a newer
-- one instead of undoing it.
create table sentry_issue (
    installation_uuid text not null,
    issue_id          text not null,
    short_id          text,
    title             text,
    project_slug      text,
    web_url           text,
    status            text,
    substatus         text,
    assignee          text,
    status_at         bigint,
    status_delivery   bigint,
    assigned_at       bigint,
    assigned_delivery bigint,
    event_count       bigint not null default 0,
    last_event_at     bigint,
    updated_at        bigint not null,
    primary key (installation_uuid, issue_id)
);

-- Effects that must happen once however often a delivery is replayed
-- (counting an event, opening a ticket): the key is written in the same
-- transaction as the effect.
create table applied_effect (
    installation_uuid text not null,
    effect_key        text not null,
    delivery_id       bigint,
    created_at        bigint not null,
    primary key (installation_uuid, effect_key)
);

-- Where a ticket came from, the metric alert it follows, and the events
-- counted on it.
alter table ticket add column source text not null default 'console';
alter table ticket add column metric_alert_id text;
alter table ticket add column severity text;
alter table ticket add column occurrences bigint not null default 0;
alter table ticket add column last_event_at bigint;
alter table ticket add column status_at bigint;
alter table ticket add column status_delivery bigint;
create unique index ticket_metric_alert on ticket (installation_uuid, metric_alert_id)
    where metric_alert_id is not null;

-- The order of the last edit applied to a mirrored comment, so an older
-- comment.updated arriving late does not overwrite a newer one.
alter table comment add column edit_at bigint;
alter table comment add column edit_delivery bigint;

-- What processing did, in a sentence the delivery log shows.
alter table delivery add column note text;
create index delivery_installation_id on delivery (installation_uuid, id);
create index delivery_action_id on delivery (action, id);

-- Every attempt to process a delivery: when, how it went, and why not.
create table delivery_attempt (
    id                integer primary key autoincrement,
    delivery_id       bigint not null,
    attempt           bigint not null,
    finished_at       bigint not null,
    outcome           text not null,
    error             text
);
create index delivery_attempt_delivery on delivery_attempt (delivery_id, id);
