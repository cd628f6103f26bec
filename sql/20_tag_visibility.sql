-- Stage tag_visibility: is each tag of tag_stats visible from above, and up to which GSD (metres)?
-- Until the tag classifier fills it, hand-written rules decide (seed tag_visibility_rules.csv, key
-- and value as GLOB patterns, '*' = anything). The most specific matching rule wins: an exact key
-- beats a pattern, then an exact value beats a pattern, then the longer key pattern.

-- name: load_rules
create or replace table tag_visibility_rules as
select * from read_csv($rules_csv, header = true, columns = {
    'key': 'varchar', 'value': 'varchar', 'visible': 'boolean', 'max_gsd_m': 'double',
    'note': 'varchar'
});

-- name: tag_visibility
create or replace table tag_visibility as
with
tags as (select key, value from tag_stats),
rules as (select * from tag_visibility_rules),
matches as (
    select
        t.key,
        t.value,
        r.visible,
        r.max_gsd_m,
        r.key || '=' || r.value as rule,
        (not contains(r.key, '*'))::int * 2 + (not contains(r.value, '*'))::int as specificity,
        length(r.key) as key_length
    from tags as t
    join rules as r on t.key glob r.key and t.value glob r.value
),
best as (
    select *
    from matches
    qualify row_number() over (
        partition by key, value order by specificity desc, key_length desc, rule
    ) = 1
)
select
    key,
    value,
    visible,
    if(visible, max_gsd_m, null) as max_gsd_m,
    if(rule = '*=*', 'default', 'seed_rule') as source,
    rule
from best
order by key, value;

-- name: summary
select
    count(*) as rows_in,
    count(*) as rows_out,
    count(*) filter (where visible) as visible,
    count(*) filter (where source = 'default') as by_default
from tag_visibility;
