-- Stage log: one row per recorded stage run. The pipeline compares a stage's fingerprint with
-- its last row's to decide whether the stage is up to date.

-- name: create
create table if not exists stage_runs (
    stage varchar not null,
    fingerprint varchar not null,
    finished_at timestamp not null default timezone('UTC', current_timestamp),
    seconds double not null,
    rows_in bigint not null,
    rows_out bigint not null,
    params json,
    info json
);

-- name: record
insert into stage_runs (stage, fingerprint, seconds, rows_in, rows_out, params, info)
values ($stage, $fingerprint, $seconds, $rows_in, $rows_out, $params, $info);

-- name: last_run
select fingerprint, finished_at::varchar as finished_at from stage_runs where stage = $stage
order by finished_at desc limit 1;

-- name: has_table
select count(*) > 0 from duckdb_tables() where table_name = $name and not temporary;
