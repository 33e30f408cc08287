-- The delivery log pages by id, filtered by state or resource.
create index delivery_state_id on delivery (state, id);
create index delivery_resource_id on delivery (resource, id);
