-- Teams: tickets belong to a team of their installation and are numbered
-- per team, so identifiers read `ENG-12` as in Jira or Linear.
--
-- Every installation has one default team, the one the worker opens tickets
-- in unless a rule names another. Existing tickets move to a default team
-- keyed `IB` whose numbers are the tickets' old ids, so every `IB-N` written
-- before this migration (notes, links, bookmarks) still names its ticket.

create table team (
    id                integer primary key autoincrement,
    installation_uuid text not null references installation (uuid),
    -- Upper-case letters and digits, starting with a letter (domain::team).
    key               text not null,
    name              text not null,
    is_default        boolean not null default false,
    -- The number the next ticket takes; taken by `update … returning` in the
    -- ticket's own transaction, so two tickets never share one.
    next_number       bigint not null default 1,
    created_at        bigint not null,
    updated_at        bigint not null,
    unique (installation_uuid, key)
);
create unique index team_default on team (installation_uuid) where is_default;

create table team_member (
    team_id           bigint not null references team (id) on delete cascade,
    -- Lower-case, as the board stores assignees.
    email             text not null,
    created_at        bigint not null,
    primary key (team_id, email)
);

alter table ticket add column team_id bigint references team (id);
alter table ticket add column number bigint;
-- `KEY-N`, written with the number: keys never change, and a plain column
-- is what the search index (0008) covers in both dialects.
alter table ticket add column identifier text;

insert into team (installation_uuid, key, name, is_default, next_number, created_at, updated_at)
select i.uuid, 'IB', 'Issues', true,
       coalesce((select max(t.id) from ticket t where t.installation_uuid = i.uuid), 0) + 1,
       cast(strftime('%s', 'now') as integer) * 1000, cast(strftime('%s', 'now') as integer) * 1000
from installation i;

update ticket set number = id, identifier = 'IB-' || id,
                  team_id = (select d.id from team d where d.installation_uuid = ticket.installation_uuid and d.is_default);

create unique index ticket_team_number on ticket (team_id, number);
