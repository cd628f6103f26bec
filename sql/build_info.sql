-- build_info: facts about the build as key/value rows (source file, checksum, counts, versions,
-- timings, attribution). The ingest stage rewrites it; later stages add their own keys.

-- name: create
create table if not exists build_info (key varchar primary key, value varchar);

-- name: clear
delete from build_info;

-- name: insert
insert or replace into build_info values ($key, $value);

-- name: sources
-- The extracts ingested, as a JSON list (given, file, name, sha256, bytes, PBF header); databases
-- built before it existed record one extract as source_file and source_sha256.
select coalesce(
    (select value from build_info where key = 'sources'),
    (select json_array(json_object('given', f.value, 'file', f.value, 'sha256', h.value))::varchar
     from build_info as f, build_info as h
     where f.key = 'source_file' and h.key = 'source_sha256')
) as value;
