-- Project service hooks registered through Sentry's API. Each signs its
-- deliveries with its own secret, kept sealed like the tokens. Sentry's
-- answer to the registration has no guid; a hook learns its guid from its
-- first verified delivery (X-ServiceHook-GUID).
create table service_hook (
    id                text primary key,
    installation_uuid text not null references installation (uuid),
    project_slug      text not null,
    url               text not null,
    events            text not null,
    secret            blob not null,
    guid              text unique,
    created_at        bigint not null
);
