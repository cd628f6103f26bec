-- build_info: facts about the build as key/value rows (source file, checksum, counts, versions,
-- timings, attribution). The ingest stage rewrites it; later stages add their own keys.

-- name: create
create table if not exists build_info (key varchar primary key, value varchar);

-- name: clear
delete from build_info;

-- name: insert
insert or replace into build_info values ($key, $value);

-- name: source_file
select value from build_info where key = 'source_file';

-- name: source_sha256
select value from build_info where key = 'source_sha256';
