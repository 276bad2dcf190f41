-- Each encounter with its patient's demographics and what was recorded during it.
with conditions as (
    select encounter_id, count(*) as condition_count
    from {{ ref('stg_conditions') }}
    group by encounter_id
),

observations as (
    select encounter_id, count(*) as observation_count
    from {{ ref('stg_observations') }}
    group by encounter_id
),

medications as (
    select encounter_id, count(*) as medication_count, sum(total_cost) as medication_cost
    from {{ ref('stg_medications') }}
    group by encounter_id
)

select
    e.encounter_id,
    e.patient_id,
    e.encounter_class,
    e.encounter_code,
    e.encounter_description,
    e.started_at,
    e.stopped_at,
    date_diff('minute', e.started_at, e.stopped_at) as duration_minutes,
    e.total_claim_cost,
    e.payer_coverage,
    e.reason_code,
    p.gender as patient_gender,
    cast(floor(date_diff('day', p.birth_date, cast(e.started_at as date)) / 365.25) as integer)
        as patient_age_at_encounter,
    coalesce(c.condition_count, 0) as condition_count,
    coalesce(o.observation_count, 0) as observation_count,
    coalesce(m.medication_count, 0) as medication_count,
    coalesce(m.medication_cost, 0) as medication_cost
from {{ ref('stg_encounters') }} as e
inner join {{ ref('stg_patients') }} as p on p.patient_id = e.patient_id
left join conditions as c on c.encounter_id = e.encounter_id
left join observations as o on o.encounter_id = e.encounter_id
left join medications as m on m.encounter_id = e.encounter_id
