-- Sentry's UI components: ticket search for the issue-link select, and code
-- mappings for stacktrace links.

-- Search over identifier and title by any substring of three or more
-- characters: FTS5's trigram tokenizer, over the ticket table itself
-- (external content), kept in step by triggers.
create virtual table ticket_search using fts5(
    identifier, title, content = 'ticket', content_rowid = 'id', tokenize = 'trigram'
);
insert into ticket_search (ticket_search) values ('rebuild');

create trigger ticket_search_insert after insert on ticket begin
    insert into ticket_search (rowid, identifier, title) values (new.id, new.identifier, new.title);
end;
create trigger ticket_search_update after update of identifier, title on ticket begin
    insert into ticket_search (ticket_search, rowid, identifier, title)
        values ('delete', old.id, old.identifier, old.title);
    insert into ticket_search (rowid, identifier, title) values (new.id, new.identifier, new.title);
end;
create trigger ticket_search_delete after delete on ticket begin
    insert into ticket_search (ticket_search, rowid, identifier, title)
        values ('delete', old.id, old.identifier, old.title);
end;

-- Identifiers: the exact one a person types, and those it starts.
create index ticket_identifier on ticket (installation_uuid, identifier);

-- Frames of `project_slug` under `stack_root` live under `source_root` of
-- the repository (components::stacktrace checks every value).
create table code_mapping (
    id                integer primary key autoincrement,
    installation_uuid text not null references installation (uuid),
    project_slug      text not null,
    stack_root        text not null,
    source_root       text not null,
    provider          text not null check (provider in ('github', 'gitlab', 'bitbucket', 'template')),
    repo_url          text not null,
    branch            text not null,
    created_at        bigint not null,
    updated_at        bigint not null,
    unique (installation_uuid, project_slug, stack_root)
);
