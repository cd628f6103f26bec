-- Stage rare_tags: visible tags with fewer than $rare_threshold selected objects get their objects
-- added to selected_objects (reason 'rare_tag', detail 'key=value'), at most $rare_cap per tag, drawn
-- at random (seeded). An object already selected keeps its first reason.

-- name: reset
delete from selected_objects where reason = 'rare_tag';

-- name: add_rare
insert into selected_objects
with
visible as (select key, value from tag_visibility where visible),
selected_counts as (
    select t.key, t.value, count(*) as n_selected
    from osm_tags as t
    semi join selected_objects as s using (osm_type, osm_id)
    group by t.key, t.value
),
rare as (
    select v.key, v.value
    from visible as v
    left join selected_counts as c using (key, value)
    where coalesce(c.n_selected, 0) < $rare_threshold
),
candidates as (
    select t.osm_type, t.osm_id, t.key || '=' || t.value as tag
    from osm_tags as t
    join rare using (key, value)
    anti join selected_objects as s using (osm_type, osm_id)
),
capped as (
    select *
    from candidates
    qualify row_number() over (
        partition by tag order by uniform($seed, osm_type, osm_id), osm_type, osm_id
    ) <= $rare_cap
),
final as (
    select osm_type, osm_id, 'rare_tag' as reason, min(tag) as detail
    from capped
    group by osm_type, osm_id
)
select * from final
order by osm_type, osm_id;

-- name: summary
select
    count(*) filter (where reason = 'grid') as rows_in,
    count(*) filter (where reason = 'rare_tag') as rows_out,
    count(distinct detail) filter (where reason = 'rare_tag') as rare_tags,
    count(*) as selected
from selected_objects;
